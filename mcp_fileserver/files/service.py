"""The file operations behind the tools: confinement + reading + walking, no MCP.

Each method takes the client's literal path and the effective roots for this request
(MCP Roots may narrow them), and returns an output model or raises a `Refusal`.
Everything here is blocking I/O; the tools run it in a worker thread.
"""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mcp_fileserver.config import FilesSettings, Settings
from mcp_fileserver.errors import InvalidRequest, LimitExceeded, PolicyViolation, Refusal
from mcp_fileserver.files import media, models, read, search, walk
from mcp_fileserver.files.confine import Confinement, Method, Root, describe_special
from mcp_fileserver.files.denylist import DenyList

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Media:
    info: models.MediaFile
    data_base64: str


class FileService:
    def __init__(self, confinement: Confinement, limits: FilesSettings) -> None:
        self.confinement = confinement
        self.limits = limits

    @classmethod
    def from_settings(cls, settings: Settings, method: Method | None = None) -> FileService:
        deny = DenyList(settings.deny_patterns)
        return cls(Confinement(settings.allowed_dirs, deny, method), settings.files)

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
        cap = self.limits.max_read_bytes if max_bytes is None else max_bytes
        with self.confinement.open(path, want="file", roots=roots) as f:
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
    ) -> models.DirectoryListing:
        limit = self.limits.max_list_entries if limit is None else limit
        with self.confinement.open(path, want="dir", roots=roots) as d:
            names, more = walk.scan(d.fd, self.deny, self.limits.max_walk_entries)
            entries = []
            for name in names[offset : offset + limit]:
                e = walk.lstat_entry(d.fd, name, (name,), 1)
                if e is not None:
                    entries.append(
                        models.DirectoryEntry(
                            name=e.name, type=e.kind, size=e.size, modified=walk.iso_time(e.mtime)
                        )
                    )
            end = offset + limit
            return models.DirectoryListing(
                path=d.path,
                entries=entries,
                offset=offset,
                total=len(names),
                next_offset=end if end < len(names) else None,
                truncated=more,
            )

    def directory_tree(
        self,
        path: str,
        *,
        max_depth: int = 3,
        max_entries: int | None = None,
        exclude_patterns: Sequence[str] = (),
        roots: Sequence[Root] | None = None,
        progress: Progress | None = None,
    ) -> models.DirectoryTree:
        budget = self._budget(max_entries, progress, max_depth=max_depth)
        exclude = walk.compile_globs(list(exclude_patterns))
        tree: list[models.TreeEntry] = []
        with self.confinement.open(path, want="dir", roots=roots) as d:
            for e in walk.walk(d.fd, deny=self.deny, budget=budget, exclude=exclude):
                expanded = e.depth < max_depth if e.kind == "directory" else None
                tree.append(
                    models.TreeEntry(
                        path="/".join(e.rel), type=e.kind, size=e.size, expanded=expanded
                    )
                )
            return models.DirectoryTree(
                path=d.path,
                tree=tree,
                entries=budget.visited,
                truncated=budget.stopped is not None,
                stopped_by=budget.stopped,
            )

    def search_files(
        self,
        path: str,
        pattern: str,
        *,
        exclude_patterns: Sequence[str] = (),
        max_results: int | None = None,
        roots: Sequence[Root] | None = None,
        progress: Progress | None = None,
    ) -> models.FileSearch:
        budget = self._budget(None, progress)
        limit = self.limits.max_search_results if max_results is None else max_results
        with self.confinement.open(path, want="dir", roots=roots) as d:
            found, stopped = search.search_names(
                d.fd,
                pattern,
                deny=self.deny,
                budget=budget,
                exclude=list(exclude_patterns),
                max_results=limit,
            )
            return models.FileSearch(
                path=d.path,
                pattern=pattern,
                matches=[
                    models.NameMatch(path=d.root.display((*d.rel, *m.rel)), type=m.kind)  # type: ignore[arg-type]
                    for m in found
                ],
                truncated=stopped is not None,
                stopped_by=stopped,
                entries_visited=budget.visited,
            )

    def search_file_contents(
        self,
        path: str,
        pattern: str,
        *,
        regex: bool = False,
        glob: str | None = None,
        case_sensitive: bool = True,
        max_results: int | None = None,
        roots: Sequence[Root] | None = None,
        progress: Progress | None = None,
    ) -> models.ContentSearch:
        program = search.compile_content_pattern(
            pattern, regex=regex, case_sensitive=case_sensitive
        )
        budget = self._budget(None, progress)
        limit = self.limits.max_search_results if max_results is None else max_results
        with self.confinement.open(path, want="any", roots=roots) as d:
            if stat.S_ISREG(d.stat.st_mode):
                found, stats = search.search_one_file(
                    d.fd,
                    program,
                    budget=budget,
                    max_results=limit,
                    max_bytes=self.limits.max_search_bytes,
                )
            elif not stat.S_ISDIR(d.stat.st_mode):
                raise PolicyViolation(
                    "not a regular file or directory", detail=describe_special(d.stat.st_mode)
                )
            else:
                found, stats = search.search_contents(
                    d.fd,
                    program,
                    deny=self.deny,
                    budget=budget,
                    glob=glob,
                    max_results=limit,
                    max_bytes=self.limits.max_search_bytes,
                )
            return models.ContentSearch(
                path=d.path,
                pattern=pattern,
                matches=[
                    models.LineMatch(
                        path=d.root.display((*d.rel, *m.rel)), line=m.line, text=m.text
                    )
                    for m in found
                ],
                files_scanned=stats.files_scanned,
                bytes_scanned=stats.bytes_scanned,
                truncated=stats.stopped is not None,
                stopped_by=stats.stopped,
            )

    def _budget(
        self, max_entries: int | None, progress: Progress | None, *, max_depth: int | None = None
    ) -> walk.Budget:
        cap = self.limits.max_walk_entries
        budget = walk.Budget(
            max_entries=min(cap, max_entries) if max_entries is not None else cap,
            timeout_s=self.limits.walk_timeout_s,
            progress=progress,
        )
        if max_depth is not None:
            budget.max_depth = min(max_depth, walk.MAX_WALK_DEPTH)
        return budget
