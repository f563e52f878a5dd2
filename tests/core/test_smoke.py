from pathlib import Path

from fastmcp import Client

from tests.conftest import in_memory_client, stdio_transport


async def test_in_memory_lists_allowed_directory(tmp_path: Path, settings_factory) -> None:
    settings = settings_factory(allow=[tmp_path])
    async with in_memory_client(settings) as client:
        result = await client.call_tool("list_allowed_directories", {})
    assert result.structured_content == {"directories": [str(tmp_path.resolve())]}


async def test_stdio_subprocess_serves(tmp_path: Path) -> None:
    transport = stdio_transport("--allow", str(tmp_path), "--log-dir", str(tmp_path / "logs"))
    async with Client(transport) as client:
        tools = {t.name for t in await client.list_tools()}
        assert "list_allowed_directories" in tools
