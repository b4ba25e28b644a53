"""The toy matrices' scores: an undecidable pair (no null on either side) has no congruity,
so it can neither raise nor lower a mean, and a criterion over unmeasurable rows is not shown."""

import math

from interpeq.reproduce.toy import congruity_form, family_stats
from interpeq.reproduce.toy_report import _all_rows

FAMILY = {"algorithm_1": "sorting", "algorithm_2": "sorting", "algorithm_5": "counting"}


def test_a_pair_without_a_null_has_no_congruity_in_either_form():
    undecidable = {"p": math.nan}
    assert math.isnan(congruity_form(undecidable, "one_sided"))  # was min(1, nan) = 1.0
    assert math.isnan(congruity_form(undecidable, "two_sided"))
    assert congruity_form({"p": 0.5}, "two_sided") == 1.0
    assert math.isclose(congruity_form({"p": 0.9}, "one_sided"), 0.2)


def test_family_means_leave_undecidable_pairs_out():
    rows = [
        {"group_a": "algorithm_1", "group_b": "algorithm_2", "congruity": 0.2},
        {"group_a": "algorithm_1", "group_b": "algorithm_2", "congruity": math.nan},
        {"group_a": "algorithm_1", "group_b": "algorithm_5", "congruity": math.nan},
    ]
    stats = family_stats(rows, FAMILY)
    assert stats["within_sorting"] == 0.2 and stats["n_within_sorting"] == 1
    assert stats["across_families"] is None and stats["n_across_families"] == 0


def test_the_row_criterion_is_not_shown_when_rows_are_unmeasurable():
    every = {"diagonal_above_other_family": {"a": True, "b": True}, "all_rows": True,
             "rows_measured": 2}  # fmt: skip
    some = {"diagonal_above_other_family": {"a": True, "b": None}, "all_rows": True,
            "rows_measured": 1}  # fmt: skip
    assert _all_rows(every) == "yes"
    assert _all_rows(some) == "not shown: yes in the 1 measurable rows of 2"
    assert _all_rows({**some, "all_rows": False}) == "no"


def test_a_tied_pair_is_not_drawn_as_equivalent():
    from interpeq.reproduce.toy_explain import _dominant

    def pair(rejected, equivalent):
        return {"undecidable": False, "decisions": {"rejected": rejected, "equivalent": equivalent}}

    assert _dominant(pair(6, 6)) == "rejected"
    assert _dominant(pair(5, 7)) == "equivalent"
    assert _dominant({**pair(0, 0), "undecidable": True}) == "undecidable"
