"""Values from what a caller said: spoken digits, dates, phone numbers, patterned identifiers, enums."""

from __future__ import annotations

import pytest

from realtime.offline.policy import arguments as ent


@pytest.mark.parametrize(
    ("said", "normalised"),
    [
        ("five five five, one two three, four five six seven", "5551234567"),
        ("double five triple seven", "55777"),
        ("nineteen eighty five", "1985"),
        ("nineteen oh five", "1905"),
        ("two thousand and five", "2005"),
        ("March third", "March 3"),
        ("the twenty first of June", "21 June"),
        ("order one two three four five", "order 12345"),
    ],
)
def test_spoken_numbers(said: str, normalised: str) -> None:
    assert ent.normalize_numbers(said) == normalised


@pytest.mark.parametrize(
    "said",
    [
        "I was born on March 3rd 1985",
        "born 3 March 1985",
        "the third of March, nineteen eighty five",
        "March third nineteen eighty-five",
        "03/03/1985",
        "1985-03-03",
        "Mar. 3, 85",
    ],
)
def test_dates_to_iso(said: str) -> None:
    assert [d for d, _ in ent.find_dates(ent.normalize_numbers(said))] == ["1985-03-03"]


def test_phone_numbers_exclude_dates() -> None:
    text = ent.normalize_numbers("it's five five five one two three four five six seven and I was born March 3rd 1985")
    assert ent.find_phone_numbers(text) == ["5551234567"]
    assert ent.find_phone_numbers("call me on +44 20 7946 0958") == ["+442079460958"]
    assert ent.find_phone_numbers("(555) 123-4567") == ["5551234567"]


def test_pattern_identifiers() -> None:
    assert ent.pattern_candidates(r"^ORD-\d{5}$", "order 12345 please") == ["ORD-12345"]
    assert ent.pattern_candidates(r"^ORD-\d{5}$", "it's ord-54321") == ["ORD-54321"]
    assert ent.pattern_candidates(r"^\d{5}$", "my zip is 94105 and my phone 5551234567") == ["94105"]
    assert ent.pattern_candidates(r"^ORD-\d{5}$", "my number is 5551234567") == []


def test_enums_and_yes_no() -> None:
    reasons = ["damaged", "wrong_item", "no_longer_needed", "other"]
    assert ent.match_enum(reasons, "the screen arrived cracked") == "damaged"
    assert ent.match_enum(reasons, "you sent me the wrong item") == "wrong_item"
    assert ent.match_enum(reasons, "I just don't need it anymore") == "no_longer_needed"
    assert ent.match_enum(reasons, "they're lovely") is None
    assert ent.match_bool("yes please") is True and ent.match_bool("no, don't") is False
    assert ent.match_bool("maybe") is None
