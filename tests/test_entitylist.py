"""What an Entity List rule does, read from BIS's real abstracts (``models.entitylist``), and
the fact line an alert shows for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from delivery.exports import COLUMNS, entity_list_cell
from delivery.render import fact_lines
from models.entitylist import Destination, english_number, list_change, list_fields
from models.fields import item_fields

DATA = Path(__file__).parent / "data" / "federal_register"
ABSTRACTS = {
    r["document_number"]: (r["title"], r["abstract"] or "")
    for r in json.loads((DATA / "fr_bis_rule_titles_abstracts.json").read_text(encoding="utf-8"))
}


def change(number: str) -> tuple[int | None, int | None, int | None, list[tuple[str, int | None]]]:
    found = list_change(*ABSTRACTS[number])
    assert found is not None, number
    return (
        found.added,
        found.removed,
        found.revised,
        [(d.name, d.entries) for d in found.destinations],
    )


def test_additions_with_counts_per_destination() -> None:
    # "adding 29 entries (26 entities and 3 addresses) to the Entity List under the
    # destinations of People's Republic of China (China) (19), Turkey (9), and the United
    # Arab Emirates (UAE) (1)"
    assert change("2025-19508") == (29, None, None, [("China", 19), ("Turkey", 9), ("UAE", 1)])


def test_removals_in_words_and_chinas_long_form() -> None:
    # "removing one entity from the Entity List under the destination of China, People's
    # Republic of (China)"
    assert change("2025-19858") == (None, 1, None, [("China", None)])
    assert change("2026-17230") == (None, 1, None, [("Turkey", None)])


def test_a_rule_adding_and_modifying_counts_only_what_concerns_the_entity_list() -> None:
    # "... also amends the EAR by removing three entities from the Validated End-User (VEU)
    # Program": a removal, but not from the Entity List.
    added, removed, revised, where = change("2024-28267")
    assert (added, removed, revised) == (140, None, 14)
    assert where == [("China", None), ("Japan", None), ("South Korea", None), ("Singapore", None)]


def test_a_russia_rule_lists_its_ten_destinations() -> None:
    added, _, _, where = change("2022-04925")
    assert added == 91
    assert [name for name, _ in where] == [
        *("Belize", "Estonia", "Kazakhstan", "Latvia", "Malta", "Russia", "Singapore"),
        *("Slovakia", "Spain", "United Kingdom"),
    ]


def test_rules_about_the_list_that_list_nobody_give_nothing() -> None:
    for number in ("2022-19415", "2025-19001", "2024-28423"):  # authorisation, 50 % rule, briefing
        assert list_change(*ABSTRACTS[number]) is None, number
    assert list_change("Additions to the Entity List", "") is None
    assert list_change("Export Administration Regulations", "adding 5 entities to the list") is None


@pytest.mark.parametrize(
    ("text", "number"),
    [("12", 12), ("1,000", 1000), ("one", 1), ("twelve", 12), ("nineteen", 19),
     ("twenty-eight", 28), ("ninety", 90), ("eleventy", None), ("twenty-ten", None)],
)  # fmt: skip
def test_english_numbers(text: str, number: int | None) -> None:
    assert english_number(text) == number


def test_a_hostile_abstract_is_read_in_bounded_time_and_kept_short() -> None:
    hostile = "BIS is adding 7 entities to the Entity List under the destinations of " + (
        "Aaaa, " * 50_000
    )
    found = list_change("Additions to the Entity List", hostile)
    assert found is not None
    assert found.added == 7
    assert len(found.destinations) <= 30
    assert Destination("Aaaa") in found.destinations


def test_the_alert_shows_who_was_added_where() -> None:
    fields = item_fields(list_fields(*ABSTRACTS["2025-19508"]))
    assert "Entity List: 29 added · China (19), Turkey (9), UAE (1)" in fact_lines(fields)
    many = item_fields(list_fields(*ABSTRACTS["2022-04925"]))
    assert any(line.endswith("Slovakia and 2 more") for line in fact_lines(many))


def test_the_export_has_a_cell_for_it() -> None:
    fields = item_fields(list_fields(*ABSTRACTS["2024-28267"]))
    assert entity_list_cell(fields) == "140 added, 14 revised; China, Japan, South Korea, Singapore"
    assert entity_list_cell(item_fields(list_fields(*ABSTRACTS["2022-19415"]))) == ""
    assert COLUMNS[-2:] == ("to_be_published", "entity_list")


def test_counts_of_another_list_in_the_same_sentence_are_not_the_entity_lists() -> None:
    moved = list_change(
        "Revisions to the Unverified List",
        "BIS is removing 4 entities from the Unverified List and moving them to the Entity List "
        "under the destination of China.",
    )
    assert moved is not None
    assert (moved.added, moved.removed) == (None, None)  # a move off another list
    both = list_change(
        "Additions to the Unverified List and the Entity List",
        "BIS is adding 9 persons to the Unverified List and adding 3 entities to the Entity "
        "List under the destinations of Bosnia and Herzegovina (1), Korea, North (1), and "
        "Russia (1).",
    )
    assert both is not None
    assert both.added == 3
    assert [(d.name, d.entries) for d in both.destinations] == [
        ("Bosnia and Herzegovina", 1),
        ("Korea, North", 1),
        ("Russia", 1),
    ]
