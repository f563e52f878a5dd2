"""Output models of the file tools: the structured results (and schemas) clients see."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

EntryType = Literal["file", "directory", "symlink", "other"]


class AllowedDirectories(BaseModel):
    directories: list[str] = Field(description="Absolute paths; every path must be inside one.")


class DirectoryEntry(BaseModel):
    name: str
    type: EntryType
    size: int = Field(description="Bytes, as lstat reports (a symlink's own size).")
    modified: str = Field(description="Last modification, ISO 8601 UTC.")


class DirectoryListing(BaseModel):
    path: str
    entries: list[DirectoryEntry]
    offset: int
    total: int = Field(description="Visible entries of the directory.")
    next_offset: int | None = Field(description="Offset of the next page, null at the end.")


class TreeEntry(BaseModel):
    """One entry of a tree. The tree is a flat list in walk order (a directory, then
    what it holds) so that no depth of directories is a depth of JSON nesting: parsers
    and schema validators limit nesting (to 128 or so), the walk goes to 256 levels."""

    path: str = Field(description="Relative to the tree's root, '/'-separated.")
    type: EntryType
    size: int
    expanded: bool | None = Field(
        default=None,
        description="For a directory: true within max_depth (its entries follow, unless "
        "the walk stopped early), false at max_depth; null for other types.",
    )


class DirectoryTree(BaseModel):
    path: str
    tree: list[TreeEntry] = Field(description="Pre-order: each directory before its entries.")
    entries: int = Field(description="Entries included in the tree.")
    truncated: bool
    stopped_by: str | None = Field(
        description="What ended the walk early: max_entries, timeout or cancelled; null if "
        "complete. A continued tree repeats the ancestors of its first entry."
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` with the same arguments to continue exactly where this "
        "answer stopped; null when complete.",
    )


class TextFile(BaseModel):
    path: str
    text: str
    truncated: bool = Field(description="More content exists than was returned.")
    size: int = Field(description="The file's size in bytes.")


class FileReadResult(BaseModel):
    path: str
    text: str | None = None
    truncated: bool = False
    size: int | None = None
    error: str | None = Field(default=None, description="Why this file was not read.")


class MultipleFiles(BaseModel):
    files: list[FileReadResult]
    total_bytes: int = Field(description="Bytes of text returned across all files.")


class MediaFile(BaseModel):
    path: str
    mime_type: str = Field(description="Detected from the content, not the name.")
    size: int


class FileInfo(BaseModel):
    path: str
    type: EntryType
    size: int
    created: str | None = Field(description="Birth time where the platform reports it.")
    modified: str
    accessed: str
    permissions: str = Field(description="Octal permission bits, e.g. 0644.")
    mode: str = Field(description="ls-style mode, e.g. -rw-r--r--.")


class NameMatch(BaseModel):
    path: str
    type: EntryType


class FileSearch(BaseModel):
    path: str
    pattern: str
    matches: list[NameMatch]
    truncated: bool
    stopped_by: str | None = Field(
        description="max_results, timeout or cancelled when the search stopped early."
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` with the same arguments to continue exactly where this "
        "answer stopped; null when complete.",
    )
    entries_visited: int


class LineMatch(BaseModel):
    path: str
    line: int = Field(description="1-based line number.")
    text: str = Field(description="The matching line (cut to 500 characters).")


class ContentSearch(BaseModel):
    path: str
    pattern: str
    matches: list[LineMatch]
    files_scanned: int
    bytes_scanned: int
    truncated: bool
    stopped_by: str | None = Field(
        description="max_results, max_bytes, timeout or cancelled when stopped early."
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` with the same arguments to continue exactly where this "
        "answer stopped; null when complete.",
    )
