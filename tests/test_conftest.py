"""The shared conftest's rule: under CI a test that skips for a missing data source fails, naming the source."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SKIPPING_TEST = """
import pytest
from fsq.data import SourceUnavailable

def test_needs_data():
    try:
        raise SourceUnavailable("mnist is not prepared: run `fsq data prepare mnist`")
    except SourceUnavailable as error:
        pytest.skip(str(error))

def test_skips_for_another_reason():
    pytest.skip("not this platform")
"""


@pytest.mark.parametrize("ci", [None, "true"])
def test_missing_data_fails_only_under_ci(pytester, monkeypatch, ci):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_data=SKIPPING_TEST)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    if ci is None:
        result.assert_outcomes(skipped=2)
    else:
        result.assert_outcomes(failed=1, skipped=1)
        result.stdout.fnmatch_lines(["*a data source is missing*mnist is not prepared*"])


def test_test_file_basenames_are_unique():
    """Tests import by basename (no packages): two files of one name stop the whole collection."""
    names = [p.name for p in Path(__file__).parent.rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
