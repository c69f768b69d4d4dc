"""The one Markdown-table writer every report, card and benchmark table uses."""

import pytest

from fsq import markdown


def test_table_is_header_rule_and_rows():
    lines = markdown.table(["codec", "bits/s"], [["opus-6k", 6209], ["silence", 0]])
    assert lines == ["| codec | bits/s |", "|---|---|", "| opus-6k | 6209 |", "| silence | 0 |"]


def test_rows_can_be_added_later_and_cells_are_strings_of_any_value():
    lines = markdown.table(["a", "b", "c"])
    lines.append(markdown.row([1.5, None, ""]))
    assert lines == ["| a | b | c |", "|---|---|---|", "| 1.5 | None |  |"]


def test_right_alignment_rule():
    assert markdown.table(["x", "y"], align="---:")[1] == "|---:|---:|"


def test_unknown_alignment_is_refused():
    with pytest.raises(ValueError, match="align"):
        markdown.table(["x"], align="--")


def test_the_readme_doctest_example():
    import doctest

    assert doctest.testmod(markdown).failed == 0
