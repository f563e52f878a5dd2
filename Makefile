# One entry point for humans and CI. `make test` is the README's test command.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run demo test test-all system lint lock lock-upgrade clean binary binary-onefile docker

# Every Python dependency comes from the hashed lockfile config/lock/dev.txt (`make lock`
# writes it from pyproject.toml); .ci/lockcheck.py stops the install, naming `make lock`,
# when the two disagree.
LOCK := config/lock/dev.txt

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	PYTHON=$(PYTHON) .ci/setup build  # the MariaDB driver builds from source: libmariadb-dev, gcc
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python .ci/lockcheck.py
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

# Regenerate config/lock/ after changing dependencies in pyproject.toml (keeps every other
# pin; lock-upgrade takes the newest releases pyproject.toml allows), then `make install`.
# Needs only uv in .venv, so it works while the install itself refuses a stale lock.
UV := $(BIN)/uv
lock:
	@[ -x $(UV) ] || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }
	.ci/lock

lock-upgrade:
	@[ -x $(UV) ] || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }
	.ci/lock --upgrade

DEMO_CONFIG := config/demo/demo.toml

# Build the demo database from its SQL script and run a short real MCP session.
demo: install
	$(BIN)/python -m mcp_fileserver.demo --config $(DEMO_CONFIG)

# Serve the demo workspace over stdio (what an MCP client would start).
run: install
	$(BIN)/python -m mcp_fileserver.demo --config $(DEMO_CONFIG) --prepare-only
	$(BIN)/mcp-fileserver --config $(DEMO_CONFIG)

# System packages the suite needs (PostgreSQL 15 server, npm for the peers): installed with
# apt when root, otherwise one line naming the command. .ci/run runs the same steps.
system:
	.ci/setup

# Everything that can run here; what cannot (Docker image, frozen binary not built) is
# skipped with the make target that builds it, and counted on the last lines.
test: system install peers
	$(BIN)/pytest

# Builds the frozen binary and the Docker image too, and runs everything; as in CI
# (CI=true), a test that cannot run fails instead of skipping.
test-all: system install peers binary docker
	CI=true $(BIN)/pytest

lint: install
	$(BIN)/ruff check mcp_fileserver tests bench
	$(BIN)/ruff format --check mcp_fileserver tests bench
	$(BIN)/mypy

# Frozen executable (PyInstaller, config/pyinstaller/mcp-fileserver.spec), see docs/deploy.md.
SPEC := config/pyinstaller/mcp-fileserver.spec

# One folder: dist/mcp-fileserver/mcp-fileserver (fast start; what the Docker image ships).
binary: install
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist \
	  --workpath build/pyinstaller $(SPEC)

# One file: dist/onefile/mcp-fileserver (unpacks itself to a temp folder on every start).
binary-onefile: install
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist/onefile \
	  --workpath build/pyinstaller-onefile $(SPEC) -- --onefile

# Docker image mcp-fileserver:<version> (and :latest). Offline base for this machine:
#   make docker PYTHON_IMAGE=$$(../shared/tools/docker-base.sh)
VERSION      := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' mcp_fileserver/__init__.py)
IMAGE        ?= mcp-fileserver:$(VERSION)
PYTHON_IMAGE ?=
docker:
	docker build $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) \
	  -t $(IMAGE) -t mcp-fileserver:latest .

# npm peers pinned by bench/package.json + package-lock.json: Node.js 22 (as an npm
# package: the peers need >= 22), the baselines the benchmarks compare against, and the
# MCP Inspector CLI that tests/e2e drives. Optional dependencies (DBHub's drivers for
# other databases) are not installed, but for `mariadb`, pinned directly for bench-mysql.
PEERS := bench/node_modules/.peers-installed
.PHONY: peers bench bench-core bench-files bench-files-scale bench-sql bench-mysql bench-guard bench-audit bench-binary
peers: $(PEERS)

$(PEERS): bench/package.json bench/package-lock.json
	npm ci --prefix bench --omit=optional --no-audit --no-fund --loglevel=error
	touch $(PEERS)

# Benchmarks (never part of `make test`); figures and commands in bench/RESULTS.md,
# each run's raw output in bench/out/.
bench: bench-core bench-files bench-files-scale bench-sql bench-mysql bench-guard bench-audit bench-binary

# Issue 15: startup, idle memory, per-call latency and 1/8/32 calls in flight, beside the
# bare FastMCP server and the Node filesystem server.
bench-core: install peers
	$(BIN)/python bench/bench_core.py

bench-files: install peers
	$(BIN)/python bench/bench_files.py

# Issue 19: a generated 100k-file tree, side by side with rg -j1, find and the Node server.
bench-files-scale: install peers
	$(BIN)/python bench/bench_files_scale.py

bench-sql: install peers
	$(BIN)/python bench/bench_sql.py

# Issue 17: run_query vs DBHub on a throwaway MariaDB (needs `make system`), 20 and
# 10,000 rows, beside bare PyMySQL.
bench-mysql: install peers
	$(BIN)/python bench/bench_mysql.py

bench-guard: install
	$(BIN)/python bench/bench_guard.py

bench-audit: install
	$(BIN)/python bench/bench_audit.py

bench-binary: binary
	$(BIN)/python bench/bench_binary.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
