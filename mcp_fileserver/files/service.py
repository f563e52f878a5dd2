"""The file operations behind the tools: confinement + reading + walking, no MCP.

Each method takes the client's literal path and the effective roots for this request
(MCP Roots may narrow them), and returns an output model or raises a `Refusal`.
Everything here is blocking I/O; the tools run it in a worker thread, except small
reads and metadata (`read_text_file_within`, `get_file_info`: see tools.py).
"""

from __future__ import annotations

import base64
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mcp_fileserver.config import FilesSettings, Settings
from mcp_fileserver.errors import InvalidRequest, LimitExceeded, PolicyViolation, Refusal
from mcp_fileserver.files import ignore, media, models, read, search, walk
from mcp_fileserver.files.confine import (
    FILE_FLAGS,
    Confinement,
    Method,
    Opened,
    Root,
    describe_special,
)
from mcp_fileserver.files.cursor import CursorCodec, Position, query_key
from mcp_fileserver.files.denylist import DenyList
from mcp_fileserver.files.scan_worker import ScanWorker
from mcp_fileserver.files.secret_content import SecretContent
from mcp_fileserver.files.walk_split import Leftovers

Progress = Callable[[int], None]
_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink"}


@dataclass(frozen=True)
class Media:
    info: models.MediaFile
    data_base64: str


class FileService:
    def __init__(
        self,
        confinement: Confinement,
        limits: FilesSettings,
        secret_content: SecretContent | None = None,
    ) -> None:
        self.confinement = confinement
        self.limits = limits
        # Files holding a configured secret are refused and skipped (secret_content.py).
        self.secret_content = secret_content or SecretContent(())
        self.cursors = CursorCodec()
        self.clock: Callable[[], float] = time.monotonic  # of every time budget
        # A second process for content searches, forked when the server starts serving
        # (scan_worker.start_workers, after the sandbox); until then searches run here.
        self.scan_worker = ScanWorker(self.secret_content) if limits.search_worker else None
        self.name_leftovers = Leftovers()  # what a name search's worker walked ahead

    @classmethod
    def from_settings(cls, settings: Settings, method: Method | None = None) -> FileService:
        deny = DenyList(settings.deny_patterns)
        return cls(
            Confinement(settings.allowed_dirs, deny, method),
            settings.files,
            SecretContent(settings.secrets.values),
        )

    @property
    def deny(self) -> DenyList:
        return self.confinement.deny

    # -- reading -----------------------------------------------------------------------

    def read_text_file(
        self,
        path: str,
        *,
        head: int | None = None,
        tail: int | None = None,
        roots: Sequence[Root] | None = None,
        max_bytes: int | None = None,
    ) -> models.TextFile:
        found = self.read_text_file_within(
            path, head=head, tail=tail, roots=roots, max_bytes=max_bytes, max_size=None
        )
        assert found is not None
        return found

    def read_text_file_within(
        self,
        path: str,
        *,
        max_size: int | None,
        head: int | None = None,
        tail: int | None = None,
        roots: Sequence[Root] | None = None,
        max_bytes: int | None = None,
    ) -> models.TextFile | None:
        """`read_text_file`, or None, having read nothing, when the file is larger than
        `max_size` bytes: the work done is then bounded by `max_size` (the secret scan
        reads the whole file), whatever the file."""
        cap = self.limits.max_read_bytes if max_bytes is None else max_bytes
        with self.confinement.open(path, want="file", roots=roots) as f:
            if max_size is not None and f.stat.st_size > max_size:
                return None
            self.secret_content.refuse(f.fd)
            text = read.read_text(f.fd, f.stat.st_size, max_bytes=cap, head=head, tail=tail)
            return models.TextFile(
                path=f.path, text=text.text, truncated=text.truncated, size=text.size
            )

    def read_multiple_files(
        self, paths: Sequence[str], *, roots: Sequence[Root] | None = None
    ) -> models.MultipleFiles:
        if len(paths) > self.limits.max_multi_files:
            raise LimitExceeded(f"at most {self.limits.max_multi_files} paths per call")
        budget = self.limits.max_multi_total_bytes
        results: list[models.FileReadResult] = []
        for path in paths:
            if budget <= 0:
                results.append(
                    models.FileReadResult(
                        path=path,
                        error="not read: the total size limit of this call was reached "
                        f"({self.limits.max_multi_total_bytes} bytes)",
                    )
                )
                continue
            try:
                cap = min(self.limits.max_read_bytes, budget)
                one = self.read_text_file(path, roots=roots, max_bytes=cap)
            except Refusal as exc:
                results.append(models.FileReadResult(path=path, error=exc.message))
                continue
            used = len(one.text.encode("utf-8"))
            budget -= used
            results.append(
                models.FileReadResult(
                    path=path, text=one.text, truncated=one.truncated, size=one.size
                )
            )
        total = self.limits.max_multi_total_bytes - budget
        return models.MultipleFiles(files=results, total_bytes=total)

    def read_media_file(self, path: str, *, roots: Sequence[Root] | None = None) -> Media:
        cap = self.limits.max_media_bytes
        with self.confinement.open(path, want="file", roots=roots) as f:
            size = f.stat.st_size
            if size > cap:
                raise LimitExceeded(f"file is larger than the media limit of {cap} bytes")
            self.secret_content.refuse(f.fd)
            mime = media.sniff(read.read_capped(f.fd, size, media.SNIFF_BYTES))
            if mime is None:
                raise InvalidRequest(
                    "not a recognised image or audio file; use read_text_file for text"
                )
            data = read.read_capped(f.fd, size, cap)
            return Media(
                info=models.MediaFile(path=f.path, mime_type=mime, size=len(data)),
                data_base64=base64.b64encode(data).decode("ascii"),
            )

    def get_file_info(self, path: str, *, roots: Sequence[Root] | None = None) -> models.FileInfo:
        found = self.confinement.lstat(path, roots=roots)
        st = found.stat
        birth = getattr(st, "st_birthtime", None)
        return models.FileInfo(
            path=found.path,
            type=walk.kind_of(st.st_mode),
            size=st.st_size,
            created=walk.iso_time(birth) if birth is not None else None,
            modified=walk.iso_time(st.st_mtime),
            accessed=walk.iso_time(st.st_atime),
            permissions=f"{stat.S_IMODE(st.st_mode):04o}",
            mode=stat.filemode(st.st_mode),
        )

    # -- listing and walking -----------------------------------------------------------

    def list_directory(
        self,
        path: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        roots: Sequence[Root] | None = None,
        cancel: threading.Event | None = None,
    ) -> models.DirectoryListing:
        limit = self.limits.max_list_entries if limit is None else limit
        with self.confinement.open(path, want="dir", roots=roots) as d:
            budget = walk.Budget(
                timeout_s=self.limits.walk_timeout_s, cancel=cancel, clock=self.clock
            )
            names, total = walk.scan_page(d.fd, self.deny, offset, limit, budget)
            if budget.stopped is not None:
                raise LimitExceeded(_stopped_message(budget.stopped))
            entries = []
            for name in names:
                try:
                    st = os.stat(name, dir_fd=d.fd, follow_symlinks=False)
                except OSError:
                    continue  # vanished since the scan
                entries.append(
                    models.DirectoryEntry(
                        name=name,
                        type=walk.kind_of(st.st_mode),
                        size=st.st_size,
                        modified=walk.iso_time(st.st_mtime),
                    )
                )
            end = offset + limit
            return models.DirectoryListing(
                path=d.path,
                entries=entries,
                offset=offset,
                total=total,
                next_offset=end if end < total else None,
            )

    def directory_tree(
        self,
        path: str,
        *,
        max_depth: int = 3,
        max_entries: int | None = None,
        exclude_patterns: Sequence[str] = (),
        include_ignored: bool = False,
        cursor: str | None = None,
        roots: Sequence[Root] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """A `models.DirectoryTree` as plain JSON-ready data: a tree holds up to
        `max_walk_entries` nodes, and a model object per node cost more than the walk."""
        cap = self.limits.max_walk_entries
        budget = walk.Budget(
            timeout_s=self.limits.walk_timeout_s,
            max_entries=min(cap, max_entries) if max_entries is not None else cap,
            max_depth=min(max_depth, walk.MAX_WALK_DEPTH),
            progress=progress,
            cancel=cancel,
            clock=self.clock,
        )
        tree: list[dict[str, Any]] = []
        with self.confinement.open(path, want="dir", roots=roots) as d:
            query = query_key(
                "directory_tree", d.path, max_depth, list(exclude_patterns), include_ignored
            )
            after = self._resume(query, cursor)
            filters = self._filters(d, exclude_patterns, include_ignored)
            last: tuple[str, ...] | None = None
            append = tree.append
            kinds = _KINDS
            for seg in walk.segments(
                d.fd, deny=self.deny, budget=budget, filters=filters,
                after=after.rel if after else None,
            ):  # fmt: skip
                prefix = "/".join(seg.rel) + "/" if seg.rel else ""
                expand = seg.depth < max_depth
                for e in seg.entries:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue  # vanished since the scan
                    kind = kinds.get(stat.S_IFMT(st.st_mode), "other")
                    append(
                        {"path": prefix + e.name, "type": kind, "size": st.st_size,
                         "expanded": expand if kind == "directory" else None}
                    )  # fmt: skip
                if not seg.context:
                    last = (*seg.rel, seg.entries[-1].name)
            stopped = budget.stopped
            next_cursor = None
            if stopped is not None:
                resume = Position(last) if last is not None else (after or Position(()))
                next_cursor = self.cursors.encode(query, resume)
            return {
                "path": d.path,
                "tree": tree,
                "entries": budget.visited,
                "truncated": stopped is not None,
                "stopped_by": stopped,
                "next_cursor": next_cursor,
            }

    def search_files(
        self,
        path: str,
        pattern: str,
        *,
        exclude_patterns: Sequence[str] = (),
        max_results: int | None = None,
        include_ignored: bool = False,
        cursor: str | None = None,
        roots: Sequence[Root] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> models.FileSearch:
        """`search_files_data` as its model."""
        data = self.search_files_data(
            path, pattern, exclude_patterns=exclude_patterns, max_results=max_results,
            include_ignored=include_ignored, cursor=cursor, roots=roots, progress=progress,
            cancel=cancel,
        )  # fmt: skip
        return models.FileSearch.model_validate(data)

    def search_files_data(
        self,
        path: str,
        pattern: str,
        *,
        exclude_patterns: Sequence[str] = (),
        max_results: int | None = None,
        include_ignored: bool = False,
        cursor: str | None = None,
        roots: Sequence[Root] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """A `models.FileSearch` as plain JSON-ready data: a model object per match cost
        about as much as walking a page of 1,000 matches."""
        budget = self._budget(progress, cancel)
        limit = self.limits.max_search_results if max_results is None else max_results
        with self.confinement.open(path, want="dir", roots=roots) as d:
            query = query_key(
                "search_files", d.path, pattern, list(exclude_patterns), include_ignored
            )
            after = self._resume(query, cursor)
            found, stopped, resume = search.search_names(
                d.fd,
                pattern,
                deny=self.deny,
                budget=budget,
                filters=self._filters(d, exclude_patterns, include_ignored),
                max_results=limit,
                after=after,
                worker=self.scan_worker,
                leftovers=self.name_leftovers,
                query=query,
            )
            prefix = d.path
            return {
                "path": prefix,
                "pattern": pattern,
                "matches": [{"path": f"{prefix}/{m.path}", "type": m.kind} for m in found],
                "truncated": stopped is not None,
                "stopped_by": stopped,
                "next_cursor": self.cursors.encode(query, resume) if resume is not None else None,
                "entries_visited": budget.visited,
            }

    def search_file_contents(
        self,
        path: str,
        pattern: str,
        *,
        regex: bool = False,
        glob: str | None = None,
        case_sensitive: bool = True,
        max_results: int | None = None,
        include_ignored: bool = False,
        cursor: str | None = None,
        roots: Sequence[Root] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> models.ContentSearch:
        program = search.compile_content_pattern(
            pattern, regex=regex, case_sensitive=case_sensitive
        )
        budget = self._budget(progress, cancel)
        limit = self.limits.max_search_results if max_results is None else max_results
        max_bytes = self.limits.max_search_bytes
        with self.confinement.open(path, want="any", roots=roots) as d:
            query = query_key(
                "search_file_contents", d.path, pattern, regex, glob, case_sensitive,
                include_ignored,
            )  # fmt: skip
            after = self._resume(query, cursor)
            if stat.S_ISREG(d.stat.st_mode):
                self.secret_content.refuse(d.fd)
                found, stats = search.search_one_file(
                    d.fd, d.stat.st_size, program, budget=budget, max_results=limit,
                    max_bytes=max_bytes, after=after,
                )  # fmt: skip
            elif not stat.S_ISDIR(d.stat.st_mode):
                raise PolicyViolation(
                    "not a regular file or directory",
                    detail=describe_special(d.stat.st_mode),
                    violation=False,
                )
            else:
                found, stats = search.search_contents(
                    d.fd,
                    program,
                    deny=self.deny,
                    budget=budget,
                    filters=self._filters(d, (), include_ignored),
                    glob=glob,
                    max_results=limit,
                    max_bytes=max_bytes,
                    after=after,
                    secret=self.secret_content if self.secret_content else None,
                    worker=self.scan_worker,
                    spec=(pattern, regex, case_sensitive),
                )
            return models.ContentSearch(
                path=d.path,
                pattern=pattern,
                matches=[
                    models.LineMatch.model_construct(
                        path=d.root.display((*d.rel, *m.rel)), line=m.line, text=m.text
                    )
                    for m in found
                ],
                files_scanned=stats.files_scanned,
                bytes_scanned=stats.bytes_scanned,
                truncated=stats.stopped is not None,
                stopped_by=stats.stopped,
                next_cursor=(
                    self.cursors.encode(query, stats.resume) if stats.resume is not None else None
                ),
            )

    # -- helpers -------------------------------------------------------------------------

    def _budget(self, progress: Progress | None, cancel: threading.Event | None) -> walk.Budget:
        return walk.Budget(
            timeout_s=self.limits.walk_timeout_s, progress=progress, cancel=cancel, clock=self.clock
        )

    def _resume(self, query: str, cursor: str | None) -> Position | None:
        return None if cursor is None else self.cursors.decode(query, cursor)

    def _filters(
        self, d: Opened, exclude_patterns: Sequence[str], include_ignored: bool
    ) -> walk.Filters:
        layers: tuple[ignore.IgnoreFile, ...] = ()
        if not include_ignored:
            layers = self._ignore_files_above(d)
        return walk.Filters(
            exclude=walk.compile_globs(list(exclude_patterns)),
            include_ignored=include_ignored,
            ignore_layers=layers,
        )

    def _ignore_files_above(self, d: Opened) -> tuple[ignore.IgnoreFile, ...]:
        """The `.gitignore` files of the directories between the root and a walk's start,
        each opened through the confinement, with paths relative to their own directory."""
        layers: list[ignore.IgnoreFile] = []
        for depth in range(len(d.rel)):
            above = d.root.display(d.rel[:depth])
            try:
                with self.confinement.open(above, want="dir", roots=[d.root]) as parent:
                    lead = "/".join(d.rel[depth:]) + "/"
                    found = ignore.read_ignore_file(parent.fd, FILE_FLAGS, lead=lead)
            except Refusal:
                continue
            if found is not None:
                layers.append(found)
        return tuple(layers)


def _stopped_message(reason: str) -> str:
    if reason == "cancelled":
        return "cancelled"
    return "the directory could not be listed within the time limit"
