"""The "what you should see" ranges: one table, rendered beside a run's values, with typos refused."""

import math

import pytest

from utils import expectations
from utils.config import PROFILES
from utils.expectations import EXPECTED, Expectation


def test_every_range_is_ordered_and_names_a_lesson():
    for profile, table in EXPECTED.items():
        for key, entry in table.items():
            lesson, _, name = key.partition(".")
            assert lesson.isdigit() and len(lesson) == 2 and name, f"{profile}: key {key!r} is not '<NN>.<name>'"
            assert entry.low <= entry.high and entry.check, key


def test_note_flags_a_value_out_of_range_with_what_to_check(capsys):
    low = EXPECTED["tiny"]["01.zero_shot.rouge1"]
    table = expectations.note("01", {"zero_shot.rouge1": low.high + 0.1, "zero_shot.gen_len_words": 5.0}, PROFILES["tiny"])
    row = table.loc[low.label]
    assert row["status"] == "OUT OF RANGE" and row["if off, check"] == low.check
    assert table.loc[EXPECTED["tiny"]["01.zero_shot.gen_len_words"].label, "status"] == "in range"
    assert "1 of 2 values in the expected range" in capsys.readouterr().out


def test_a_nan_is_out_of_range():
    assert not Expectation("x", 0.0, 1.0, "check").holds(math.nan)


def test_note_refuses_an_unknown_name_in_every_profile():
    for profile in PROFILES.values():
        with pytest.raises(expectations.UnknownExpectation, match="zero_shot.rouge1"):
            expectations.note("01", {"zero_shot.rogue1": 0.1}, profile)


def test_profiles_without_ranges_show_the_values_only(capsys):
    table = expectations.note("01", {"zero_shot.rouge1": 0.9}, PROFILES["full"])
    assert list(table.columns) == ["this run"] and table["this run"].iloc[0] == 0.9
    assert "reference lab" in capsys.readouterr().out


def test_an_inverted_range_is_refused():
    with pytest.raises(ValueError, match="low"):
        Expectation("x", 1.0, 0.0, "check")


def test_a_target_bound_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="outside"):
        Expectation("x", 0.0, 0.5, "check", target=expectations.Target(">=", 0.9, "x"))
