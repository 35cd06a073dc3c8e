"""Matching rules of SPEC section 3, one test per rule, plus properties over arbitrary text."""

from __future__ import annotations

import time
from typing import Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_runbook import matching, patterns
from pytest_runbook.matching import Mismatch, check, normalise


def reason(expected: List[str], actual: str, **kwargs: object) -> Optional[str]:
    result = check(expected, actual, **kwargs)  # type: ignore[arg-type]
    return None if result is None else result.reason


def matches(expected: List[str], actual: str, **kwargs: object) -> bool:
    return check(expected, actual, **kwargs) is None  # type: ignore[arg-type]


# --- normalise ------------------------------------------------------------------------------


def test_normalise_empty_text_is_no_lines() -> None:
    assert normalise("") == []
    assert normalise("\n\n  \n") == []


def test_normalise_drops_trailing_spaces_and_trailing_blank_lines_only() -> None:
    assert normalise("  a  \n\nb\t\n\n \n") == ["  a", "", "b"]


def test_normalise_crlf_and_trailing_cr() -> None:
    assert normalise("a\r\nb\r\n") == ["a", "b"]
    assert normalise("a\r\r\n") == ["a"]


def test_normalise_lone_cr_overwrites_like_a_terminal() -> None:
    assert normalise("10%\r 50%\r100%\n") == ["100%"]
    assert normalise("abcdef\rXY\n") == ["XYcdef"]


def test_normalise_erase_line_after_cr() -> None:
    # Spinners: "\r" then ESC[K clears what was there before writing the shorter text.
    assert normalise("long text\r\x1b[Kshort\n") == ["short"]
    assert normalise("long text\r\x1b[2K\rok\n") == ["ok"]


def test_normalise_backspace() -> None:
    assert normalise("N\bNA\bAM\bME\n") == ["NAME"]


def test_normalise_strips_ansi_sequences() -> None:
    text = (
        "\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[m\n"  # CSI / SGR
        "\x1b]0;window title\x07a\n"  # OSC ended by BEL
        "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n"  # OSC 8 hyperlink ended by ST
        "\x1b(Bplain\x1b=\x1b7\n"  # charset, keypad mode, save cursor
        "\x1b[?25lhidden cursor\x1b[?25h\n"
        "stray\x1b\n"
    )
    assert normalise(text) == ["red rgb", "a", "link", "plain", "hidden cursor", "stray"]


def test_normalise_ansi_keep_keeps_escapes_but_still_trims() -> None:
    assert normalise("\x1b[32mok\x1b[0m  \r\n\n", ansi_keep=True) == ["\x1b[32mok\x1b[0m"]


def test_normalise_unterminated_osc_does_not_swallow_following_lines() -> None:
    assert normalise("\x1b]0;title\nnext\n") == ["", "next"]


# --- exact ----------------------------------------------------------------------------------


def test_exact_match_and_mismatch() -> None:
    assert matches(["hello", "world"], "hello\nworld\n")
    assert reason(["hello", "world"], "hello\nthere\n") == (
        "expected line 2 'world' does not match output line 2 'there'"
    )


def test_trailing_spaces_and_blank_lines_ignored_on_both_sides() -> None:
    assert matches(["hello   ", "", ""], "hello\n\n\n")
    assert matches(["a"], "a   \r\n\r\n")


def test_leading_and_inner_spaces_count() -> None:
    assert not matches(["  a"], "a\n")
    assert not matches(["a  b"], "a b\n")


def test_blank_line_in_the_middle_counts() -> None:
    assert matches(["a", "", "b"], "a\n\nb\n")
    assert not matches(["a", "b"], "a\n\nb\n")


def test_empty_expectation_matches_only_empty_output() -> None:
    assert matches([], "")
    assert matches([""], "\n \n")
    assert reason([], "x\n") == "output has 1 more lines than expected, from output line 1 'x'"


def test_ansi_stripped_before_matching_unless_kept() -> None:
    assert matches(["ok"], "\x1b[32mok\x1b[0m\n")
    assert not matches(["ok"], "\x1b[32mok\x1b[0m\n", ansi_keep=True)
    assert matches(["\x1b[32mok\x1b[0m"], "\x1b[32mok\x1b[0m\n", ansi_keep=True)


def test_crlf_output_matches_lf_expectation() -> None:
    assert matches(["a", "b"], "a\r\nb\r\n")


def test_output_too_short_and_too_long_reasons() -> None:
    assert reason(["a", "b", "c", "d"], "a\nb\n") == (
        "expected 4 lines, output ended after 2: expected line 3 'c' is missing"
    )
    assert reason(["a"], "a\nb\nc\n") == (
        "output has 2 more lines than expected, from output line 2 'b'"
    )


@pytest.mark.parametrize(
    "literal", ["a.*b", "(x)", "[abc]", "a+b?", "^x$", "a|b", "\\d", "{1,2}", "[.]"]
)
def test_literal_line_with_regex_characters_is_literal(literal: str) -> None:
    assert matches([literal], literal + "\n")
    assert not matches([literal], "axxb\n")
    assert not matches(["a.*b"], "aXYZb\n")


def test_expected_lines_given_with_newlines_or_cr_are_split() -> None:
    assert matches(["a\nb", "c\r"], "a\nb\nc\n")


# --- "..." ----------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["", "x\n", "x\ny\nz\n"])
def test_dots_alone_matches_anything(output: str) -> None:
    assert matches(["..."], output)


def test_dots_at_start() -> None:
    assert matches(["...", "end"], "a\nb\nend\n")
    assert matches(["...", "end"], "end\n")
    assert reason(["...", "end"], "a\nend\nb\n") == (
        "expected line 2 'end' does not match output line 3 'b' "
        "(the lines after '...' must match the end of the output)"
    )


def test_dots_at_end() -> None:
    assert matches(["start", "..."], "start\na\nb\n")
    assert matches(["start", "..."], "start\n")
    assert reason(["start", "..."], "nope\nstart\n") == (
        "expected line 1 'start' does not match output line 1 'nope'"
    )


def test_dots_in_middle_including_zero_lines() -> None:
    assert matches(["a", "...", "z"], "a\nb\nc\nz\n")
    assert matches(["a", "...", "z"], "a\nz\n")
    assert not matches(["a", "...", "z"], "a\n")
    assert not matches(["a", "...", "a"], "a\n")


def test_dots_with_surrounding_whitespace() -> None:
    assert matches(["a", "   ...  ", "z"], "a\nb\nz\n")


def test_several_dots_and_middle_segments() -> None:
    expected = ["a", "...", "m", "n", "...", "x", "...", "z"]
    assert matches(expected, "a\nm\nn\nx\nz\n")
    assert matches(expected, "a\n1\nm\nn\n2\n3\nx\n4\nz\n")
    assert not matches(expected, "a\nx\nm\nn\nz\n")


def test_middle_segment_is_placed_leftmost() -> None:
    # Greedy leftmost placement must still leave room for the later segments.
    assert matches(["...", "b", "...", "b", "..."], "b\nb\n")
    assert not matches(["...", "b", "...", "b", "..."], "b\n")


def test_middle_segment_failure_reason_names_the_line_and_the_window() -> None:
    assert reason(["a", "...", "m", "...", "z"], "a\nb\nc\nz\n") == (
        "expected line 3 'm' matched no output line between output lines 1 and 4"
    )
    assert reason(["...", "m", "n", "..."], "x\nm\nq\n") == (
        "expected line 3 'n' does not match output line 3 'q', "
        "though the lines before it matched from output line 2"
    )


def test_tail_with_not_enough_lines_left() -> None:
    assert reason(["a", "b", "...", "c"], "a\nb\n") == (
        "expected line 4 'c' matched no output line after output line 2"
    )


def test_consecutive_dots_behave_as_one() -> None:
    assert matches(["a", "...", "...", "z"], "a\nz\n")


def test_dots_text_within_a_line_is_literal() -> None:
    assert matches(["loading..."], "loading...\n")
    assert not matches(["loading..."], "loading done\n")


# --- [..] -----------------------------------------------------------------------------------


def test_glob_matches_any_text_within_a_line() -> None:
    assert matches(["hello [..]"], "hello world\n")
    assert matches(["[..]"], "anything at all\n")
    assert not matches(["hello [..]"], "goodbye world\n")


def test_trailing_glob_accepts_output_whose_trailing_space_was_stripped() -> None:
    # `echo "hello $EMPTY"` prints "hello ", which normalises to "hello".
    assert matches(["hello [..]"], "hello \n")
    assert matches(["a [..] [..]"], "a \n")
    assert matches(["a [..] b [..]"], "a x b\n")
    assert not matches(["a [..] b [..]"], "a x bc\n")
    assert not matches(["hello [..]"], "hell\n")


def test_glob_can_match_empty_text() -> None:
    assert matches(["a[..]b"], "ab\n")
    assert matches(["[..]"], "x\n")


def test_glob_does_not_cross_lines() -> None:
    assert not matches(["a[..]b"], "a\nb\n")


def test_several_globs_in_one_line() -> None:
    line = "[..] took [..]s ([..] tests)"
    assert matches([line], "run took 1.5s (12 tests)\n")
    assert not matches([line], "run took 1.5s 12 tests\n")
    assert matches(["[..][..]x[..]"], "x\n")


def test_glob_prefix_and_suffix_do_not_overlap() -> None:
    assert not matches(["ab[..]ba"], "aba\n")
    assert matches(["ab[..]ba"], "abba\n")


def test_glob_line_other_text_is_literal() -> None:
    assert not matches(["a.c [..]"], "abc x\n")
    assert matches(["a.c [..]"], "a.c x\n")


def test_glob_on_a_huge_line_is_linear() -> None:
    line = "x" * 1_000_000
    pattern = "[..]".join(["x"] * 200) + "[..]y"
    start = time.perf_counter()
    assert not matches([pattern], line + "\n")
    assert matches(["x[..]" * 200], line + "\n")
    assert time.perf_counter() - start < 5


# --- (re) -----------------------------------------------------------------------------------


def test_regex_line_is_a_full_match() -> None:
    assert matches([r"\d+ files (re)"], "12 files\n")
    assert not matches([r"\d+ files (re)"], "12 files changed\n")
    assert not matches([r"\d+ (re)"], "x12\n")
    assert reason([r"\d+ files (re)"], "many files\n") == (
        "expected line 1 '\\d+ files (re)' does not match output line 1 'many files'"
    )


def test_regex_line_does_not_cross_lines() -> None:
    assert not matches(["a.*b (re)"], "a\nb\n")
    assert matches(["a.*b (re)", "..."], "a x b\nc\n")


def test_regex_suffix_needs_the_space() -> None:
    assert matches(["x(re)"], "x(re)\n")
    assert not matches(["x(re)"], "x\n")


def test_invalid_regex_is_compared_literally_and_reported() -> None:
    assert matches(["a(b (re)"], "a(b (re)\n")
    text = reason(["a(b (re)"], "a(b\n")
    assert text is not None
    assert text.startswith("expected line 1 'a(b (re)' does not match output line 1 'a(b'")
    assert "its regex is invalid (missing ), unterminated subpattern" in text
    assert text.endswith("so it was compared literally")


def test_dots_within_a_line_are_literal_and_the_reason_says_so() -> None:
    assert matches(["Loading..."], "Loading...\n")
    assert not matches(["took ...s"], "took 3.2s\n")
    assert matches(["took [..]s"], "took 3.2s\n")
    assert reason(["took ...s"], "took 3.2s\n") == (
        "expected line 1 'took ...s' does not match output line 1 'took 3.2s'; "
        "'...' within a line is literal text: '[..]' matches any text there"
    )
    missing = reason(["a", "took ...s"], "a\n")
    assert missing is not None and missing.endswith("'[..]' matches any text there")
    # A line of its own is the multi-line wildcard; a regex line says nothing of dots.
    assert matches(["a", "  ...", "c"], "a\nb\nc\n")
    regex = reason(["x... (re)"], "y\n")
    assert regex is not None and "[..]" not in regex


def test_invalid_regex_fallback_still_honours_globs() -> None:
    assert matches(["a( [..] (re)"], "a( x (re)\n")


# --- substitutions --------------------------------------------------------------------------

SUBS = {"[CWD]": "/home/x/proj", "[TMP]": "/tmp/abc", "[ROOT]": "/repo", "[HOST]": "box1"}


def test_substitution_in_literal_line() -> None:
    assert matches(["[CWD]/src on [HOST]"], "/home/x/proj/src on box1\n", substitutions=SUBS)
    assert not matches(["[CWD]/src"], "/home/y/proj/src\n", substitutions=SUBS)


def test_substitution_in_glob_line() -> None:
    assert matches(["cd [TMP]/[..]"], "cd /tmp/abc/run-1\n", substitutions=SUBS)
    assert not matches(["cd [TMP]/[..]"], "cd /tmp/xyz/run-1\n", substitutions=SUBS)


def test_substitution_in_regex_line_is_escaped() -> None:
    subs = {"[CWD]": "/a.b/(c)"}
    assert matches([r"[CWD]/\d+ (re)"], "/a.b/(c)/42\n", substitutions=subs)
    assert not matches([r"[CWD]/\d+ (re)"], "/aXb/(c)/42\n", substitutions=subs)


def test_substitution_value_with_metacharacters_is_literal() -> None:
    subs = {"[V]": "a.*[..]"}
    assert matches(["x [V]"], "x a.*[..]\n", substitutions=subs)
    assert not matches(["x [V]"], "x anything\n", substitutions=subs)
    assert matches(["[V] [..]"], "a.*[..] tail\n", substitutions=subs)
    assert not matches(["[V] [..]"], "aZZ tail\n", substitutions=subs)


def test_substitution_keys_with_metacharacters() -> None:
    subs = {"$(HOME)": "/h", "a.b": "X"}
    assert matches(["$(HOME)/a.b"], "/h/X\n", substitutions=subs)
    assert not matches(["$(HOME)/a.b"], "/h/aZb\n", substitutions=subs)


def test_longest_key_wins_and_values_are_not_resubstituted() -> None:
    subs = {"[TMP]": "/tmp", "[TMP]DIR": "/var/tmp", "[A]": "[B]", "[B]": "no"}
    assert matches(["[TMP]DIR/[TMP]"], "/var/tmp//tmp\n", substitutions=subs)
    assert matches(["[A]"], "[B]\n", substitutions=subs)


def test_no_or_empty_substitutions() -> None:
    assert matches(["[CWD]"], "[CWD]\n", substitutions=None)
    assert matches(["[CWD]"], "[CWD]\n", substitutions={})
    assert matches(["x"], "x\n", substitutions={"": "ignored"})


def test_mismatch_keeps_substitutions_for_the_diff() -> None:
    result = check(["[CWD] [..]", "end"], "/home/x/proj hi\nEND\n", substitutions=SUBS)
    assert result is not None
    assert " [CWD] [..]" in result.diff().splitlines()


# --- contains -------------------------------------------------------------------------------


def test_contains_subsequence_in_order() -> None:
    out = "a\nb\nc\nd\n"
    assert matches(["b", "d"], out, mode="contains")
    assert matches(["[..]", "d"], out, mode="contains")
    assert matches([], out, mode="contains")
    assert matches(["b", "...", "d"], out, mode="contains")


def test_contains_lines_must_be_whole_lines() -> None:
    assert not matches(["b"], "abc\n", mode="contains")
    assert matches(["[..]b[..]"], "abc\n", mode="contains")


def test_contains_order_matters_and_reason_says_so() -> None:
    assert reason(["d", "b"], "a\nb\nc\nd\n", mode="contains") == (
        "expected line 2 'b' matched no output line after output line 4 "
        "(it matches output line 2, before the previous match)"
    )
    assert reason(["x"], "a\n", mode="contains") == "expected line 1 'x' matched no output line"


def test_contains_same_line_twice_needs_two_lines() -> None:
    assert not matches(["b", "b"], "a\nb\nc\n", mode="contains")
    assert matches(["b", "b"], "b\nc\nb\n", mode="contains")


def test_unknown_mode_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown match mode"):
        check(["x"], "x", mode="fuzzy")


# --- Mismatch -------------------------------------------------------------------------------


def test_mismatch_fields() -> None:
    result = check(["hello [..]  ", "bye"], "hello world\r\nciao\n")
    assert isinstance(result, Mismatch)
    assert result.expected == ("hello [..]  ", "bye")
    assert result.actual == ("hello world", "ciao")
    assert result.line == 1
    assert result.mode == "exact"
    extra = check(["a"], "a\nb\n")
    assert extra is not None and extra.line is None


def test_long_lines_are_shortened_in_reasons() -> None:
    text = reason(["short"], "y" * 10_000 + "\n")
    assert text is not None and len(text) < 300


def test_diff_shows_wildcard_matched_lines_as_written() -> None:
    result = check(["hello [..]", r"\d+ (re)", "bye"], "hello world\n42\nciao\n")
    assert result is not None
    assert result.diff() == "\n".join(
        [
            "--- expected",
            "+++ actual",
            "@@ -1,3 +1,3 @@",
            " hello [..]",
            " \\d+ (re)",
            "-bye",
            "+ciao",
        ]
    )


def test_diff_elides_lines_absorbed_by_dots() -> None:
    result = check(["start", "...", "end"], "start\n1\n2\n3\nfinish\n")
    assert result is not None
    assert result.diff("doc.md", "output") == "\n".join(
        [
            "--- doc.md",
            "+++ output",
            "@@ -1,3 +1,5 @@",
            " start",
            " ...",
            "-end",
            "+finish",
        ]
    )


def test_diff_shows_extra_and_missing_lines() -> None:
    result = check(["a", "b", "c"], "a\nX\nb\nc\nd\n")
    assert result is not None
    body = result.diff().splitlines()[3:]
    assert body == [" a", "+X", " b", " c", "+d"]
    short = check(["a", "b", "c"], "a\n")
    assert short is not None
    assert short.diff().splitlines()[3:] == [" a", "-b", "-c"]


def test_diff_unmatched_middle_segment() -> None:
    result = check(["a", "...", "m", "...", "z"], "a\nb\nc\nz\n")
    assert result is not None
    assert result.diff().splitlines()[2:] == ["@@ -1,5 +1,4 @@", " a", " ...", "-m", " ...", " z"]


def test_diff_contains_mode_shows_ignored_output_as_context() -> None:
    result = check(["b", "x"], "a\nb\nc\n", mode="contains")
    assert result is not None
    assert result.diff().splitlines()[3:] == [" a", " b", " c", "-x"]


def test_diff_uses_hunks_for_long_outputs() -> None:
    lines = [str(i) for i in range(1, 201)]
    actual = "\n".join([*lines[:100], "changed", *lines[101:]]) + "\n"
    result = check(lines, actual)
    assert result is not None
    assert result.reason == "expected line 101 '101' does not match output line 101 'changed'"
    assert result.diff().splitlines() == [
        "--- expected",
        "+++ actual",
        "@@ -98,7 +98,7 @@",
        " 98",
        " 99",
        " 100",
        "-101",
        "+changed",
        " 102",
        " 103",
        " 104",
    ]


def test_diff_of_enormous_output_is_truncated() -> None:
    actual = "".join(f"{i}\n" for i in range(200_000))
    result = check(["nothing like it"], actual)
    assert result is not None
    diff = result.diff()
    assert len(diff.splitlines()) <= 2003
    assert "diff lines omitted ..." in diff
    assert diff.splitlines()[-1] == "+199999"
    huge_line = check(["x"], "y" * 5_000_000)
    assert huge_line is not None
    assert len(huge_line.diff()) < 10_000


def test_diff_of_a_hand_made_mismatch() -> None:
    # The three-field constructor stays usable, e.g. for a console block's own report.
    made = Mismatch(expected=("a",), actual=("b",), reason="custom")
    assert made.diff().splitlines()[3:] == ["-a", "+b"]


# --- performance guard (timing is measured properly in bench/) ------------------------------


def test_100k_lines_with_dots_and_globs_is_not_quadratic() -> None:
    actual = "".join(f"2024-01-01 worker-{i % 7} item {i} ok\n" for i in range(100_000))
    expected = [
        "2024-01-01 worker-0 item 0 ok",
        "...",
        "[..] item 5000 ok",
        "...",
        "2024-01-01 [..] item 50000 [..]",
        "2024-01-01 worker-[..] item 50001 ok",
        "...",
        "[..] item 99999 ok",
    ]
    start = time.perf_counter()
    assert check(expected, actual) is None
    assert check([e for e in expected if e != "..."], actual, mode="contains") is None
    failure = check([*expected[:-1], "[..] item 100000 ok"], actual)
    assert failure is not None
    assert failure.diff()
    assert time.perf_counter() - start < 5


def test_quick_head_tail_path_agrees_with_full_check() -> None:
    actual = "".join(f"{i}\n" for i in range(1, 1001)) + "\n  \n"
    assert matches(["1", "...", "1000"], actual)
    assert matches(["1", "2", "...", "999", "1000"], actual)
    assert not matches(["1", "...", "999"], actual)
    assert not matches(["1", "", "..."], "1\n")
    assert not matches(["...", "1", "1"], "1\n")
    assert not matches(["1", "...", "1"], "1\n")


# --- properties -----------------------------------------------------------------------------

# Text that is not "special" to the matcher once normalised: no "..." lines, no " (re)" suffix,
# no "[..]". Control characters are left out because normalise() interprets them.
plain_char = st.characters(codec="utf-8", exclude_characters="\x1b\r\b\n\x00") | st.sampled_from(
    list(" .()[]*+?\\^$|{}")
)
plain_line = st.text(plain_char, max_size=30).filter(
    lambda s: s.strip() != "..." and not s.rstrip().endswith(" (re)") and "[..]" not in s
)
plain_lines = st.lists(plain_line, max_size=15)
# Text made of the fragments the normaliser and matcher treat specially.
any_text = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(
        ["\x1b[", "\x1b]", "\x1b[2K", "\x07", "\x1b\\", "\r", "\b", "\n", "[..]", "..."]
    ),
    max_size=60,
).map("".join)


@given(plain_lines)
def test_property_text_matches_itself_written_literally(lines: List[str]) -> None:
    text = "\n".join(lines) + "\n"
    assert check(normalise(text), text) is None
    assert check(normalise(text), text, mode="contains") is None


@given(plain_lines, st.data())
def test_property_inserting_dots_anywhere_still_matches(
    lines: List[str], data: st.DataObject
) -> None:
    text = "\n".join(lines) + "\n"
    expected = normalise(text)
    for _ in range(data.draw(st.integers(1, 3))):
        expected.insert(data.draw(st.integers(0, len(expected))), "...")
    assert check(expected, text) is None


@given(plain_line, plain_line)
def test_property_literal_line_never_matches_a_different_line(line: str, other: str) -> None:
    if line.rstrip() != other.rstrip():
        assert check([line], other + "\n") is not None
        if line.rstrip():  # a blank expected line is a trailing one, dropped: "expect nothing"
            assert check([line], other + "\n", mode="contains") is not None


@given(plain_lines, st.data())
def test_property_contains_accepts_any_subsequence(lines: List[str], data: st.DataObject) -> None:
    text = "\n".join(lines) + "\n"
    actual = normalise(text)
    keep = data.draw(st.lists(st.booleans(), min_size=len(actual), max_size=len(actual)))
    subsequence = [line for line, k in zip(actual, keep) if k]
    assert check(subsequence, text, mode="contains") is None


@settings(max_examples=300)
@given(
    st.lists(st.text(st.characters(codec="utf-8"), max_size=20), max_size=8)
    | st.lists(
        st.sampled_from(["...", "[..]", "a[..]b", "(( (re)", ".* (re)", "a", ""]), max_size=8
    ),
    any_text,
    st.sampled_from(["exact", "contains"]),
    st.booleans(),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_property_check_never_raises(
    expected: List[str], actual: str, mode: str, ansi_keep: bool, subs: Dict[str, str]
) -> None:
    result = check(expected, actual, mode=mode, substitutions=subs, ansi_keep=ansi_keep)
    if result is not None:
        assert result.reason
        assert result.diff().startswith("--- expected\n+++ actual")


@given(any_text, st.booleans())
def test_property_normalise_is_line_local(text: str, ansi_keep: bool) -> None:
    # The quick head/tail path relies on this: each line normalises on its own.
    lines = [patterns.normalise_line(raw, ansi_keep) for raw in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    assert normalise(text, ansi_keep=ansi_keep) == lines


@given(
    st.lists(st.sampled_from(["a", "b", "", " ", "a\r\x1b[K", "b\x1b[1m"]), max_size=8),
    st.lists(st.sampled_from(["a", "b", "", "[..]"]), max_size=3),
    st.lists(st.sampled_from(["a", "b", "", "[..]"]), max_size=3),
)
def test_property_quick_path_agrees_with_full_check(
    raw: List[str], head: List[str], tail: List[str]
) -> None:
    text = "\n".join(raw)
    lines = patterns.compile_block([*head, "...", *tail], patterns.Substituter(None))
    full = matching._check_exact(lines, normalise(text)) is None
    if matching._quick_match(lines, text, False):
        assert full


def reference_exact(pattern: List[str], actual: List[str]) -> bool:
    """Obviously-correct backtracking over lines, to check the segment algorithm against."""
    if not pattern:
        return not actual
    if pattern[0].strip() == "...":
        return any(reference_exact(pattern[1:], actual[k:]) for k in range(len(actual) + 1))
    return (
        bool(actual)
        and check([pattern[0]], actual[0] + "\n") is None
        and reference_exact(pattern[1:], actual[1:])
    )


@settings(max_examples=500)
@given(
    st.lists(st.sampled_from(["...", "a", "b", "[..]", "a[..]"]), max_size=7),
    st.lists(st.sampled_from(["a", "b", "ab", "c"]), max_size=7),
)
def test_property_segment_search_agrees_with_backtracking(
    pattern: List[str], actual: List[str]
) -> None:
    while pattern and not pattern[-1]:
        pattern.pop()
    expected_result = reference_exact(pattern, actual)
    assert (check(pattern, "".join(f"{line}\n" for line in actual)) is None) == expected_result


def test_reason_shows_undecodable_bytes_as_the_diff_does() -> None:
    mismatch = check(["nope"], "head \udcff\udcfe tail\n")
    assert mismatch is not None
    assert "'head \\xff\\xfe tail'" in mismatch.reason, mismatch.reason
