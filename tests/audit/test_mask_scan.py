"""`SecretStore.found_in`: the one scan that decides whether a result is walked and masked.

Its only promise: when it says no, masking every string would change nothing. Each case
below is checked against the walk itself (`mask_deep`), so a scan that misses a secret
the walk would mask fails here."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_fileserver.secrets import SecretStore, mask_deep

PLAIN = "pw-7f3a9c2e"
AWKWARD = 'p"w\\-\n\t\x01é\x7f—雪'  # every character JSON escapes, and some it does not


def store(*secrets: str) -> SecretStore:
    found = SecretStore({}, secrets_dir=None)
    found.add_all(secrets)
    return found


def rows(*extra: Any) -> dict[str, Any]:
    return {
        "database": "shop",
        "columns": [{"name": "id", "type": "INTEGER"}, {"name": "body", "type": "TEXT"}],
        "rows": [[n, f"row {n}", n * 0.5, None, True] for n in range(200)] + list(extra),
        "row_count": 200 + len(extra),
    }


HOLDING = [
    pytest.param(rows([1, PLAIN]), PLAIN, id="a value"),
    pytest.param(rows([1, f"key={PLAIN};"]), PLAIN, id="inside a value"),
    pytest.param(rows((1, f"x{PLAIN}")), PLAIN, id="inside a tuple row"),
    pytest.param({"nested": [[{"deep": [f"..{PLAIN}.."]}]]}, PLAIN, id="nested deep"),
    pytest.param({f"k-{PLAIN}": 1}, PLAIN, id="a key"),
    pytest.param(rows([1, f"<{AWKWARD}>"]), AWKWARD, id="escaped characters"),
    pytest.param({"k": AWKWARD}, AWKWARD, id="escaped, whole value"),
    pytest.param({"k": "abc"}, "abc", id="short secret, whole value"),
]


@pytest.mark.parametrize(("value", "secret"), HOLDING)
def test_a_secret_anywhere_is_found_and_the_walk_masks_it(value: Any, secret: str) -> None:
    secrets = store(secret, "another-secret-value")
    assert secrets.found_in(value)
    assert secret not in repr(mask_deep(value, secrets.mask))


CLEAN = [
    pytest.param(rows(), id="rows"),
    pytest.param({"k": PLAIN[:-1], "j": PLAIN[1:]}, id="halves in two strings"),
    pytest.param({"k": ["p", "w-7f3a9c2e"]}, id="split across list items"),
    pytest.param({}, id="empty"),
]


@pytest.mark.parametrize("value", CLEAN)
def test_nothing_found_means_the_walk_would_change_nothing(value: Any) -> None:
    secrets = store(PLAIN, "abc")
    assert not secrets.found_in(value)
    assert mask_deep(value, secrets.mask) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"k": object()}, id="a value JSON cannot hold"),
        pytest.param({"k": "\ud800 lone surrogate"}, id="a lone surrogate"),
    ],
)
def test_what_the_scan_cannot_encode_is_walked(value: Any) -> None:
    assert store(PLAIN).found_in(value)


@pytest.mark.parametrize("secret", ["12345", "True", "-1e+16", "nan"])
def test_a_secret_a_non_string_key_could_spell_is_always_walked(secret: str) -> None:
    # str(True) is "True" where JSON writes "true": the scan cannot vouch for such keys.
    assert store(secret).found_in({True: 1, None: 2, 1e16: 3})
    assert store(secret).found_in(rows())


def test_no_secret_known_means_nothing_to_find() -> None:
    assert not store().found_in(rows([1, PLAIN]))
