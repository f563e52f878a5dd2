"""The file tools: thin adapters from MCP calls to `FileService` (policy and I/O live there).

Each tool resolves the effective roots for the request (MCP Roots may narrow the
configured directories), then runs the blocking file work in a worker thread; a text
file up to `[files] inline_read_bytes` and `get_file_info` are served on the event loop,
where they cost less than the hop. Walks report progress when the client sent a
progress token.
"""

# No `from __future__ import annotations`: the parameter constraints below close over
# the settings, so annotations must be evaluated when the tools are defined.

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from fastmcp import Context, FastMCP
from fastmcp.tools import ToolResult
from mcp.types import AudioContent, ImageContent, TextContent, ToolAnnotations
from mcp_types import InputRequiredResult
from pydantic import BaseModel, Field

from mcp_fileserver.config import Settings
from mcp_fileserver.files import answers, media
from mcp_fileserver.files.client_roots import ClientRoots, RootsChangedMiddleware
from mcp_fileserver.files.confine import Method
from mcp_fileserver.files.cursor import MAX_CURSOR_CHARS
from mcp_fileserver.files.models import (
    AllowedDirectories,
    ContentSearch,
    DirectoryListing,
    DirectoryTree,
    FileInfo,
    FileSearch,
    MediaFile,
    MultipleFiles,
    TextFile,
)
from mcp_fileserver.files.service import FileService, Progress
from mcp_fileserver.files.walk import MAX_WALK_DEPTH
from mcp_fileserver.framework import json_tool_result

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False, idempotent_hint=True)
PROGRESS_INTERVAL_S = 0.25
MAX_PATTERN_CHARS = 1000

T = TypeVar("T")
M = TypeVar("M")  # an output model, or plain data of its schema (directory_tree)
Answer = ToolResult | InputRequiredResult

MAX_PATH_CHARS = 4096  # PATH_MAX: nothing longer can be opened anyway

PathArg = Annotated[
    str,
    Field(
        max_length=MAX_PATH_CHARS,
        description="Absolute path inside an allowed directory, or relative to it when "
        "there is exactly one. Taken literally (no ~, quotes or %-decoding).",
    ),
]
IncludeIgnored = Annotated[
    bool,
    Field(description="Also walk `.git` and what .gitignore files ignore (default: skip them)."),
]
CursorArg = Annotated[
    str | None,
    Field(
        max_length=MAX_CURSOR_CHARS,
        description="`next_cursor` of a previous answer to this same call: continues exactly "
        "where it stopped.",
    ),
]
Globs = Annotated[
    list[Annotated[str, Field(max_length=MAX_PATTERN_CHARS)]],
    Field(max_length=100, description="Glob patterns on names (or relative paths) to skip."),
]


def register_file_tools(
    mcp: FastMCP, settings: Settings, *, method: Method | None = None
) -> FileService:
    """Register the file tools; `method` forces a resolution mechanism (tests)."""
    service = FileService.from_settings(settings, method)
    client_roots = ClientRoots(service.confinement)
    mcp.add_middleware(RootsChangedMiddleware(client_roots))
    limits = settings.files
    # Files up to this size are read on the event loop itself; 0: every file operation
    # in a worker thread (for a network or FUSE filesystem that may stall).
    inline_bytes = limits.inline_read_bytes

    async def confined(
        ctx: Context,
        operation: Callable[..., T],
        *args: Any,
        on_loop: bool = False,
        **kwargs: Any,
    ) -> T | InputRequiredResult:
        """Run a file operation in a worker thread (or, `on_loop`, on the event loop
        itself), within the client's effective roots (or ask a 2026-07-28 client for its
        roots first)."""
        roots = await client_roots.effective(ctx)
        if isinstance(roots, InputRequiredResult):
            return roots
        if on_loop:
            return operation(*args, roots=roots, **kwargs)
        return await _run(operation, *args, roots=roots, **kwargs)

    # Walks are CPU-bound Python holding the GIL (RE2 holds it too): two at once cost
    # more CPU than the same two in series (bench/RESULTS.md, issue 19), so later calls
    # wait their turn.
    walk_slots = anyio.CapacityLimiter(limits.max_parallel_walks)

    async def walked(
        ctx: Context, operation: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T | InputRequiredResult:
        """`confined` for a walk: at most `max_parallel_walks` at once, and cancelling the
        call stops the worker thread too."""
        roots = await client_roots.effective(ctx)
        if isinstance(roots, InputRequiredResult):
            return roots
        async with walk_slots:
            return await run_cancellable(operation, *args, roots=roots, **kwargs)

    @mcp.tool(annotations=READ_ONLY, output_schema=AllowedDirectories.model_json_schema())
    async def list_allowed_directories(ctx: Context) -> Answer:
        """The directories this server may read; paths given to other tools must be inside one."""
        roots = await client_roots.effective(ctx)
        if isinstance(roots, InputRequiredResult):
            return roots
        found = AllowedDirectories(directories=[str(r.path) for r in roots])
        return answer(found, answers.allowed_directories)

    @mcp.tool(annotations=READ_ONLY, output_schema=DirectoryListing.model_json_schema())
    async def list_directory(
        ctx: Context,
        path: PathArg,
        offset: Annotated[int, Field(ge=0, description="Entries to skip (paging).")] = 0,
        limit: Annotated[
            int, Field(ge=1, le=limits.max_list_entries, description="Entries per page.")
        ] = limits.max_list_entries,
    ) -> Answer:
        """Entries of a directory (name, type, size, modified), sorted by name, paged:
        follow `next_offset` to reach every entry.

        Symlinks are listed as symlinks; sensitive names (keys, .env...) are left out."""
        found = await walked(ctx, service.list_directory, path, offset=offset, limit=limit)
        return answer(found, answers.directory_listing)

    @mcp.tool(annotations=READ_ONLY, output_schema=DirectoryTree.model_json_schema())
    async def directory_tree(
        ctx: Context,
        path: PathArg,
        max_depth: Annotated[int, Field(ge=1, le=MAX_WALK_DEPTH)] = 3,
        max_entries: Annotated[int, Field(ge=1, le=limits.max_walk_entries)] = min(
            1000, limits.max_walk_entries
        ),
        exclude_patterns: Globs = [],  # noqa: B006 (pydantic copies defaults)
        include_ignored: IncludeIgnored = False,
        cursor: CursorArg = None,
    ) -> Answer:
        """The tree beneath a directory, one entry per line indented by depth (a flat
        list of relative paths in the structured result); `truncated` says whether a
        limit cut it short and `next_cursor` continues it. Symlinks are shown, never
        followed; `.git` and .gitignored entries are left out unless include_ignored."""
        found = await walked(
            ctx,
            service.directory_tree,
            path,
            max_depth=max_depth,
            max_entries=max_entries,
            exclude_patterns=exclude_patterns,
            include_ignored=include_ignored,
            cursor=cursor,
            progress=_progress(ctx),
        )
        # Built as plain data (no model per entry), valid against the output schema.
        return answer(found, answers.directory_tree)

    @mcp.tool(annotations=READ_ONLY, output_schema=TextFile.model_json_schema())
    async def read_text_file(
        ctx: Context,
        path: PathArg,
        head: Annotated[int | None, Field(ge=1, description="Only the first N lines.")] = None,
        tail: Annotated[int | None, Field(ge=1, description="Only the last N lines.")] = None,
    ) -> Answer:
        """A text file's content (UTF-8), capped per call (1 MiB by default); head/tail
        read only the lines they need. Binary files are refused; use read_media_file."""
        roots = await client_roots.effective(ctx)
        if isinstance(roots, InputRequiredResult):
            return roots
        found = None
        if inline_bytes:
            # A small file is read here, on the event loop: its open, scan and read cost
            # less than the hop to a worker thread and back, which with calls in flight
            # also contends for the GIL (bench/RESULTS.md, issue 15). A larger one is
            # only opened here, then read in a worker thread.
            found = service.read_text_file_within(
                path, head=head, tail=tail, roots=roots, max_size=inline_bytes
            )
        if found is None:
            found = await _run(service.read_text_file, path, head=head, tail=tail, roots=roots)
        return answer(found, answers.text_file)

    @mcp.tool(annotations=READ_ONLY, output_schema=MultipleFiles.model_json_schema())
    async def read_multiple_files(
        ctx: Context,
        paths: Annotated[list[str], Field(min_length=1, max_length=limits.max_multi_files)],
    ) -> Answer:
        """Several text files at once: one result or error per path, total size capped."""
        return answer(
            await confined(ctx, service.read_multiple_files, paths), answers.multiple_files
        )

    @mcp.tool(annotations=READ_ONLY, output_schema=MediaFile.model_json_schema())
    async def read_media_file(ctx: Context, path: PathArg) -> Answer:
        """An image or audio file as MCP content; the type is detected from the bytes."""
        found = await confined(ctx, service.read_media_file, path)
        if isinstance(found, InputRequiredResult):
            return found
        mime = found.info.mime_type
        block: ImageContent | AudioContent
        if media.is_image(mime):
            block = ImageContent(type="image", data=found.data_base64, mime_type=mime)
        else:
            block = AudioContent(type="audio", data=found.data_base64, mime_type=mime)
        return ToolResult(content=[block], structured_content=found.info.model_dump())

    @mcp.tool(annotations=READ_ONLY, output_schema=FileInfo.model_json_schema())
    async def get_file_info(ctx: Context, path: PathArg) -> Answer:
        """Size, type, times and permissions of a path; a symlink is described as itself."""
        # A few metadata system calls: cheaper on the loop than a thread hop.
        found = await confined(ctx, service.get_file_info, path, on_loop=inline_bytes > 0)
        return answer(found, answers.file_info)

    @mcp.tool(annotations=READ_ONLY, output_schema=FileSearch.model_json_schema())
    async def search_files(
        ctx: Context,
        path: PathArg,
        pattern: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_PATTERN_CHARS,
                description="Glob on entry names at any depth, like find -name ('*.py').",
            ),
        ],
        exclude_patterns: Globs = [],  # noqa: B006
        max_results: Annotated[
            int, Field(ge=1, le=limits.max_search_results)
        ] = limits.max_search_results,
        include_ignored: IncludeIgnored = False,
        cursor: CursorArg = None,
    ) -> Answer:
        """Find files and directories by name beneath a directory (`.git` and .gitignored
        entries left out unless include_ignored); `next_cursor` continues a cut answer."""
        found = await walked(
            ctx,
            service.search_files_data,
            path,
            pattern,
            exclude_patterns=exclude_patterns,
            max_results=max_results,
            include_ignored=include_ignored,
            cursor=cursor,
            progress=_progress(ctx),
        )
        return answer(found, answers.file_search)

    @mcp.tool(annotations=READ_ONLY, output_schema=ContentSearch.model_json_schema())
    async def search_file_contents(
        ctx: Context,
        path: PathArg,
        pattern: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_PATTERN_CHARS,
                description="Text to find; a regular expression (RE2 syntax) if regex=true.",
            ),
        ],
        regex: bool = False,
        glob: Annotated[
            str | None,
            Field(max_length=MAX_PATTERN_CHARS, description="Only files whose name matches."),
        ] = None,
        case_sensitive: bool = True,
        max_results: Annotated[
            int, Field(ge=1, le=limits.max_search_results)
        ] = limits.max_search_results,
        include_ignored: IncludeIgnored = False,
        cursor: CursorArg = None,
    ) -> Answer:
        """Lines matching a text or RE2 pattern in the text files beneath a directory (or
        in one file): file, line number and line. Binary files, `.git` and .gitignored
        files are skipped (unless include_ignored); `next_cursor` continues a cut answer."""
        found = await walked(
            ctx,
            service.search_file_contents,
            path,
            pattern,
            regex=regex,
            glob=glob,
            case_sensitive=case_sensitive,
            max_results=max_results,
            include_ignored=include_ignored,
            cursor=cursor,
            progress=_progress(ctx),
        )
        return answer(found, answers.content_search)

    return service


def answer(found: M | InputRequiredResult, render: Callable[[M], str]) -> Answer:
    """The one shape of every file tool's answer: `render`'s text block for the model,
    the complete model as structured content (validated by the tool's output schema).
    A request for the client's roots passes through untouched."""
    if isinstance(found, InputRequiredResult):
        return found
    text = render(found)
    if isinstance(found, dict):  # plain JSON data already (directory_tree)
        return json_tool_result(text, found)
    if isinstance(found, BaseModel):  # our output models hold only JSON types
        return json_tool_result(text, found.model_dump(mode="json"))
    return ToolResult(content=[TextContent(type="text", text=text)], structured_content=found)


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def run_cancellable(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(..., cancel=event)` in a worker thread; cancelling the awaiting task sets
    the event, which the walk checks per entry and per block read (it stops in
    milliseconds), instead of leaving the thread to run to its time budget."""
    cancel = threading.Event()
    try:
        return await anyio.to_thread.run_sync(
            partial(fn, *args, cancel=cancel, **kwargs), abandon_on_cancel=True
        )
    except anyio.get_cancelled_exc_class():
        cancel.set()
        raise


def _progress(ctx: Context) -> Progress | None:
    """A thread-side progress callback when the client asked for progress, else None."""
    rc = ctx.request_context
    meta = rc.meta if rc is not None else None
    if not meta or meta.get("progressToken") is None:
        return None
    last = 0.0

    def report(visited: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_INTERVAL_S:
            return
        last = now
        anyio.from_thread.run(ctx.report_progress, visited, None, f"{visited} entries visited")

    return report
