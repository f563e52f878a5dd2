"""The Docker image under the strictest `docker run` flags: a real MCP session over
stdio (never `-t`), files, SQL on a mounted SQLite file, refused attacks, the audit log
in the mounted log folder, clean stops on stdin EOF and on SIGTERM, configuration through
environment, a mounted config file and a Docker secret, and an image with nothing in it
but the bundle."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from mcp.types import LATEST_PROTOCOL_VERSION

from tests.packaging import contract, session
from tests.packaging.artifacts import docker_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

UID = 10001
SERVE = ["--allow", "/data", "--db", "app=sqlite:////data/app.db"]


@pytest.fixture(scope="module")
def image() -> str:
    return docker_image()


@pytest.fixture
def ws(tmp_path: Path) -> session.Workspace:
    workspace = session.Workspace(tmp_path)
    try:
        os.chown(workspace.logs, UID, UID)
        workspace.logs.chmod(0o700)
    except PermissionError:  # not root: let the container user write anyway
        workspace.logs.chmod(0o777)
    return workspace


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"mcp-fileserver-test-{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def run_args(
    image: str, ws: session.Workspace, *command: str, name: str | None = None
) -> list[str]:
    """`docker run` with exactly the documented strict flags, then the mounts."""
    args = ["run", *contract.STRICT_RUN]
    args += ["--name", name] if name else []
    args += ["-v", f"{ws.root}:/data:ro", "-v", f"{ws.outside}:/outside:ro"]
    args += ["-v", f"{ws.logs}:/logs", image, *command]
    return args


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def container_exists(name: str) -> bool:
    return bool(docker("ps", "-aq", "--filter", f"name=^{name}$").stdout.strip())


class LineClient:
    """A minimal MCP client over the raw `docker run -i` pipes, for controlling the process
    itself (closing stdin, signalling) and reading its exit status."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.stderr: list[bytes] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append)),
        ]
        for pump in self._pumps:
            pump.start()
        self._next_id = 0

    @staticmethod
    def _pump(stream: IO[bytes], sink: Callable[[bytes], None]) -> None:
        for line in stream:
            sink(line)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        for _ in range(600):
            try:
                message = json.loads(self.lines.get(timeout=0.1))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    stderr = b"".join(self.stderr).decode(errors="replace")
                    raise AssertionError(f"the server exited early: {stderr}") from None
                continue
            if message.get("id") == self._next_id:
                return message
        raise AssertionError(f"no answer to {method} within 60 s")

    def initialize(self) -> None:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "packaging-test", "version": "1"},
            },
        )
        assert "result" in reply, reply
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reply = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert "result" in reply, reply
        return reply["result"]

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = 60) -> tuple[int, str]:
        """The exit status of `docker run` (the container's) and everything on stderr."""
        code = self.proc.wait(timeout=timeout)
        for pump in self._pumps:
            pump.join(timeout=10)
        return code, b"".join(self.stderr).decode(errors="replace")


def test_documented_flags_never_allocate_a_tty() -> None:
    assert not {"-t", "--tty", "-it"} & set(contract.STRICT_RUN)


async def test_strict_container_session(image: str, ws: session.Workspace) -> None:
    transport = StdioTransport(command="docker", args=run_args(image, ws, *SERVE), keep_alive=False)
    async with Client(transport) as client:
        called = await session.exercise(client, "/data")
        absolute_escape = await client.call_tool(
            "read_text_file", {"path": "/outside/secret.txt"}, raise_on_error=False
        )
        assert absolute_escape.is_error
        assert session.CANARY not in session.result_text(absolute_escape)
    records = session.check_audit(ws, called)
    session.check_sandbox_enforced(records)
    assert ws.db.stat().st_size > 0
    verified = docker(*run_args(image, ws, "verify-log", "/logs"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_stdin_eof_stops_cleanly(image: str, ws: session.Workspace, container_name: str) -> None:
    client = LineClient(["docker", *run_args(image, ws, *SERVE, name=container_name)])
    client.initialize()
    result = client.call("read_text_file", {"path": "/data/notes.txt"})
    assert not result.get("isError"), result
    client.close_stdin()
    code, stderr = client.wait()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert not container_exists(container_name), "--rm removes the stopped container"
    records = ws.audit_records()
    assert [r["tool"] for r in records if r.get("event") == "tool_call"] == ["read_text_file"]
    assert records[-1]["event"] == "server_stop", "the stop record is flushed before exit"


def test_sigterm_stops_cleanly(image: str, ws: session.Workspace, container_name: str) -> None:
    client = LineClient(["docker", *run_args(image, ws, *SERVE, name=container_name)])
    client.initialize()
    result = client.call("run_query", {"database": "app", "sql": "SELECT count(*) FROM items"})
    assert not result.get("isError"), result
    killed = docker("kill", "--signal", "TERM", container_name)
    assert killed.returncode == 0, killed.stderr
    code, stderr = client.wait()
    # 0 when the server handles SIGTERM itself, 143 (128 + 15) when the init reports it;
    # never 137 (SIGKILL) and never a hang.
    assert code in (0, 143), stderr
    assert "Traceback" not in stderr
    records = ws.audit_records()
    assert [r["tool"] for r in records if r.get("event") == "tool_call"] == ["run_query"]
    assert records[-1]["event"] == "server_stop", "SIGTERM must flush the log and record stop"


def test_config_through_env_file_and_secret(image: str, ws: session.Workspace) -> None:
    secret_value = "hmac-secret-7e1f3a9b5c"
    (ws.base / "config.toml").write_text(
        '[files]\nmax_read_bytes = 12345\n\n[audit]\nhmac_key = "${AUDIT_HMAC_KEY}"\n'
    )
    (ws.base / "AUDIT_HMAC_KEY").write_text(secret_value + "\n")
    for name in ("config.toml", "AUDIT_HMAC_KEY"):
        (ws.base / name).chmod(0o644)
    args = ["run", *contract.STRICT_RUN]
    args += ["-e", "MCP_FILESERVER_ALLOWED_DIRS=/data"]
    args += ["-e", "MCP_FILESERVER_DB_APP=sqlite:////data/app.db"]
    args += ["-e", "MCP_FILESERVER_CONFIG=/config/config.toml"]
    args += ["-v", f"{ws.base / 'config.toml'}:/config/config.toml:ro"]
    args += ["-v", f"{ws.base / 'AUDIT_HMAC_KEY'}:/run/secrets/AUDIT_HMAC_KEY:ro"]
    args += ["-v", f"{ws.root}:/data:ro", "-v", f"{ws.logs}:/logs", image, "check"]
    result = docker(*args)
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["allowed_dirs"] == ["/data"]
    assert settings["config_file"] == "/config/config.toml"
    assert settings["files"]["max_read_bytes"] == 12345
    assert settings["audit"]["hmac_key"] == "***"
    assert settings["audit"]["log_dir"] == "/logs"
    assert [db["name"] for db in settings["databases"]] == ["app"]
    assert secret_value not in result.stdout + result.stderr


def test_image_holds_only_the_bundle(image: str, tmp_path: Path) -> None:
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"][0] == "/usr/bin/tini"
    created = docker("create", image)
    assert created.returncode == 0, created.stderr
    container = created.stdout.strip()
    try:
        exported = tmp_path / "rootfs.tar"
        assert docker("export", "-o", str(exported), container).returncode == 0
        with tarfile.open(exported) as tar:
            members = {m.name.lstrip("./"): m for m in tar.getmembers()}
    finally:
        docker("rm", "-f", container)
    names = set(members)
    basenames = {Path(n).name for n in names}
    for forbidden in ("sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "pip", "pip3"):
        assert forbidden not in basenames, f"{forbidden} must not be in the image"
    for forbidden in ("gcc", "cc", "ld", "as", "objdump", "python3", "python"):
        assert forbidden not in basenames, f"{forbidden} must not be in the image"
    assert "app/mcp-fileserver" in names and "usr/bin/tini" in names
    logs = members["logs"]
    assert (logs.uid, logs.gid) == (UID, UID), "a named volume at /logs inherits the owner"
    app_files = [m for m in members.values() if m.name.lstrip("./").startswith("app/")]
    assert all(m.uid == 0 and (m.issym() or not m.mode & 0o022) for m in app_files), (
        "the app is read-only"
    )


async def test_printed_docker_config_starts_the_server(image: str, ws: session.Workspace) -> None:
    printed = subprocess.run(
        [
            *[sys.executable, "-m", "mcp_fileserver"],
            *["print-config", "claude", "--mode", "docker", "--image", image],
            *["--allow", str(ws.root), "--db", f"app=sqlite:///{ws.db}"],
            *["--log-dir", str(ws.logs)],
        ],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")},
    )
    assert printed.returncode == 0, printed.stderr
    entry = contract.single_entry(json.loads(printed.stdout))
    contract.check_docker_entry(entry)
    transport = StdioTransport(command=entry["command"], args=entry["args"], keep_alive=False)
    async with Client(transport) as client:
        text = session.result_text(
            await client.call_tool("read_text_file", {"path": "/data/notes.txt"})
        )
        rows = session.result_text(
            await client.call_tool(
                "run_query", {"database": "app", "sql": "SELECT name FROM items"}
            )
        )
    assert "hello from the allowed root" in text and "cherry" in rows


async def test_encrypted_secrets_with_the_identity_as_a_docker_secret(
    image: str, ws: session.Workspace
) -> None:
    """The age identity mounted as a Docker secret (owned by the container user, 0400),
    the encrypted file and the config mounted read-only: the value resolves, is masked in
    results and the audit log, and a world-readable identity is refused in one line."""
    from pyrage import encrypt, x25519

    from tests.secrets.helpers import make_identity

    token = "docker-token-8d3f1a6c27"
    (ws.root / "notes.txt").write_text(f"the token is {token}\n")
    (ws.root / "notes.txt").chmod(0o644)
    keys = make_identity(ws.base / "age-identity.txt")
    try:
        os.chown(keys.identity_file, UID, UID)
    except PermissionError:
        pytest.skip("giving the identity to the container user needs root")
    keys.identity_file.chmod(0o400)
    recipient = x25519.Recipient.from_str(keys.recipient)
    encrypted = ws.base / "secrets.age"
    encrypted.write_bytes(encrypt(f"AUDIT_TOKEN={token}\n".encode(), [recipient]))
    config = ws.base / "config.toml"
    config.write_text('[audit]\nhmac_key = "${AUDIT_TOKEN}"\n')
    for path in (encrypted, config):
        path.chmod(0o644)

    def args(*command: str) -> list[str]:
        out = ["run", *contract.STRICT_RUN]
        out += ["-v", f"{keys.identity_file}:/run/secrets/age_identity:ro"]
        out += ["-e", "MCP_FILESERVER_AGE_IDENTITY_FILE=/run/secrets/age_identity"]
        out += ["-v", f"{encrypted}:/config/secrets.age:ro"]
        out += ["-e", "MCP_FILESERVER_SECRETS_FILE=/config/secrets.age"]
        out += ["-v", f"{config}:/config/config.toml:ro"]
        out += ["-e", "MCP_FILESERVER_CONFIG=/config/config.toml"]
        out += ["-v", f"{ws.root}:/data:ro", "-v", f"{ws.logs}:/logs", image, *command]
        return out

    checked = docker(*args("check", "--allow", "/data"))
    assert checked.returncode == 0, checked.stderr
    described = json.loads(checked.stdout)["secrets"]
    assert described["resolved"] == {"AUDIT_TOKEN": "encrypted file /config/secrets.age"}
    assert described["encrypted_file"]["key"] == "identity file /run/secrets/age_identity"
    transport = StdioTransport(command="docker", args=args("--allow", "/data"), keep_alive=False)
    async with Client(transport) as client:
        result = await client.call_tool(
            "read_text_file", {"path": "/data/notes.txt"}, raise_on_error=False
        )
    # Refused whole because it holds a decrypted value: proof the value was loaded.
    assert result.is_error and "not found or not allowed" in session.result_text(result)
    assert token not in session.result_text(result)
    assert token not in ws.audit_text() and token not in checked.stdout + checked.stderr
    keys.identity_file.chmod(0o444)
    refused = docker(*args("check", "--allow", "/data"))
    assert refused.returncode == 2, refused.stderr
    assert "run chmod 600" in refused.stderr and refused.stderr.strip().count("\n") == 0
    assert token not in refused.stdout + refused.stderr


async def test_mariadb_with_the_bundled_c_driver_and_auth_plugin(
    image: str, ws: session.Workspace
) -> None:
    """The image's C MariaDB driver logs in with ed25519 (client_ed25519.so dlopened from
    the bundle's plugin folder) under the strict flags, the network aside: host
    networking, to reach a throwaway MariaDB on the host's loopback."""
    from tests.sql.mariadb_server import ED25519, start_server, stop_server

    strict = list(contract.STRICT_RUN)
    at = strict.index("--network")
    strict[at + 1] = "host"
    server = start_server()
    try:
        args = ["run", *strict, "-e", f"MARIADB_TEST_PASSWORD={server.passwords[ED25519]}"]
        args += ["-v", f"{ws.logs}:/logs", image]
        args += ["--db", f"maria={server.url(ED25519, 'MARIADB_TEST_PASSWORD')}"]
        transport = StdioTransport(command="docker", args=args, keep_alive=False)
        async with Client(transport) as client:
            result = await client.call_tool(
                "run_query",
                {"database": "maria", "sql": "SELECT COUNT(*) FROM big"},
                raise_on_error=False,
            )
    finally:
        stop_server(server)
    assert not result.is_error, session.result_text(result)
    assert result.structured_content is not None
    assert result.structured_content["rows"] == [[50000]]
