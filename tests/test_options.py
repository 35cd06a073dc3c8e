"""options: one grammar per kind of value, the same wherever it is written."""

from __future__ import annotations

import pytest

from pytest_runbook.document.attributes import Invalid, parse_timeout
from pytest_runbook.options import (
    OptionError,
    parse_choice,
    parse_columns,
    parse_duration,
    parse_home,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30", 30.0),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        (" 2.5 ", 2.5),
        ("1.5m", 90.0),
        ("2M", 120.0),
        (45, 45.0),
        (0.25, 0.25),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_timeout(text) == seconds  # attributes and frontmatter read the same grammar


@pytest.mark.parametrize(
    "text", ["soon", "", "-1", "30s2m", "1m1m", "m", "ms", "1 d", "inf", True, None, [1]]
)
def test_bad_durations_say_what_to_write(text: object) -> None:
    with pytest.raises(OptionError) as caught:
        parse_duration(text, "runbook_timeout")
    assert caught.value.message == (
        f"runbook_timeout must be a number of seconds such as 30 or 2m, not {text!r}"
    )
    assert caught.value.hint == (
        "write runbook_timeout=30 (seconds), runbook_timeout=2m or runbook_timeout=1h"
    )
    with pytest.raises(Invalid):
        parse_timeout(text)


@pytest.mark.parametrize("value", ["0", 0, 0.0, "0s", "0ms", "0m0s"])
def test_a_zero_duration_must_be_greater_than_zero(value: object) -> None:
    with pytest.raises(OptionError) as caught:
        parse_duration(value)
    assert caught.value.message == (
        f"timeout must be greater than 0 seconds, not {value!r} (a cell with no time cannot run)"
    )
    assert caught.value.hint == "write timeout=30 (seconds), timeout=2m or timeout=1h"


def test_columns() -> None:
    assert parse_columns("200") == 200
    assert parse_columns(" 80 ") == 80
    for bad in ("wide", "0", "-5", "12.5", "19", "10001"):
        with pytest.raises(OptionError, match="runbook_columns must be a whole number"):
            parse_columns(bad, "runbook_columns")


def test_choices_and_home() -> None:
    assert parse_choice("Stop", ("continue", "stop"), "on-failure") == "stop"
    with pytest.raises(OptionError, match="on-failure must be one of continue, stop, not 'x'"):
        parse_choice("x", ("continue", "stop"), "on-failure")
    assert parse_home("tmp") == "tmp"
    assert parse_home("") is None
    assert parse_home(None) is None
    with pytest.raises(OptionError, match="home must be one of tmp, not '~'"):
        parse_home("~")
