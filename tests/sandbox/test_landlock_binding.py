"""The ctypes binding: struct layouts match the kernel headers, rights per ABI."""

from __future__ import annotations

import ctypes
import os

import pytest

from mcp_fileserver.sandbox import landlock as ll


def test_struct_layouts_match_linux_landlock_h() -> None:
    assert ctypes.sizeof(ll._RulesetAttr) == 24
    assert ctypes.sizeof(ll._PathBeneathAttr) == 12  # packed
    assert ctypes.sizeof(ll._NetPortAttr) == 16
    assert [ll._ruleset_attr_size(abi) for abi in range(1, 8)] == [8, 8, 8, 16, 16, 24, 24]


@pytest.mark.parametrize(
    ("abi", "expected"),
    [
        (0, 0),
        (1, 0x1FFF),
        (2, 0x3FFF),
        (3, 0x7FFF),
        (4, 0x7FFF),
        (5, 0xFFFF),
        (6, 0xFFFF),
        (7, 0xFFFF),
    ],
)
def test_filesystem_rights_grow_with_the_abi(abi: int, expected: int) -> None:
    assert ll.fs_rights(abi) == expected


def test_network_and_scopes_only_from_their_abi() -> None:
    assert [ll.net_rights(abi) for abi in (3, 4, 7)] == [0, 3, 3]
    assert [ll.scopes(abi) for abi in (5, 6, 7)] == [0, 3, 3]


def test_file_rules_carry_only_file_rights() -> None:
    assert ll.FS_FILE_RIGHTS & (ll.FS_READ_DIR | ll.FS_MAKE_REG | ll.FS_REMOVE_FILE) == 0
    assert ll.right_names(ll.FS_READ_FILE | ll.FS_READ_DIR) == ["read_file", "read_dir"]


def test_ci_exercises_a_real_landlock_kernel() -> None:
    """Every enforcement test skips without Landlock; CI must not pass that way."""
    if not os.environ.get("CI"):
        pytest.skip("outside CI a kernel without Landlock only skips the enforcement tests")
    assert ll.abi_version() >= 4, "CI needs Landlock ABI 4+ (files and TCP) to test the sandbox"
