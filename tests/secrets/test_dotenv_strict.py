"""The strict dotenv grammar of the encrypted file: what it accepts, what it refuses
(naming the line, never its content), and a writer every reader agrees with."""

from __future__ import annotations

import io

import pytest
from dotenv import dotenv_values
from hypothesis import given
from hypothesis import strategies as st

from mcp_fileserver.dotenv_strict import DotenvError, format_entry, parse, replace

SECRET = "s3cret-value-never-shown"


def test_accepted_forms() -> None:
    text = (
        "# comment\n\n"
        "A=plain\n"
        "export B = spaced # inline comment\n"
        "C='single # not a comment'\n"
        'D="line1\\nline2 \\"q\\""\n'
        "E=\n"
        "F=pa#ss it's\n"
        'G="multi\nline"\n'
    )
    document = parse(text)
    assert document.as_dict() == {
        "A": "plain",
        "B": "spaced",
        "C": "single # not a comment",
        "D": 'line1\nline2 "q"',
        "E": "",
        "F": "pa#ss it's",
        "G": "multi\nline",
    }
    assert [(e.first_line, e.last_line) for e in document.entries][-1] == (9, 10)
    assert document.comments() == ("comment",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{SECRET}\n", "line 1 is not NAME=value"),
        (f"A=1\n{SECRET}=x\n".replace("s3", "3s"), "line 2 is not NAME=value"),
        (f"A=1\n\nA={SECRET}\n", "line 3: A is already defined on line 1"),
        (f"A='{SECRET}\n", "line 1: the quote opened here is never closed"),
        (f'A="{SECRET}" trailing\n', "line 1: unexpected text after the closing quote"),
        (f"A={SECRET}\x00\n", "NUL byte"),
    ],
)
def test_refused_forms_name_the_line_not_the_value(text: str, message: str) -> None:
    with pytest.raises(DotenvError) as refused:
        parse(text)
    assert message in str(refused.value)
    assert SECRET not in str(refused.value) and SECRET[::-1] not in str(refused.value)


def test_replace_changes_one_entry_and_keeps_the_rest() -> None:
    document = parse("# keep\nA=1\nB='two'\n")
    assert replace(document, "B", "new") == "# keep\nA=1\nB='new'\n"
    assert replace(document, "C", "x y") == "# keep\nA=1\nB='two'\nC='x y'\n"


values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@given(values)
def test_written_entries_read_back_exactly_here_and_in_python_dotenv(value: str) -> None:
    line = format_entry("NAME", value)
    assert parse(line).as_dict() == {"NAME": value}
    if "\r" not in value and "$" not in value:  # python-dotenv expands ${...}, folds \r
        assert dotenv_values(stream=io.StringIO(line + "\n")) == {"NAME": value}
