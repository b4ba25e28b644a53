"""EquivalenceTracker decisions: the calibrated null needs >= 4 references per group;
smaller groups are undecidable (not "equivalent"), bigger ones get a real decision."""

import csv
import json
import math

import pytest

from interpeq.callbacks import ActivationCapture, EquivalenceTracker
from interpeq.callbacks.curves import group_values
from interpeq.equivalence import pairwise_congruity
from interpeq.equivalence.nulls import MIN_MEMBERS
from interpeq.models import HookedTransformer
from interpeq.training import fit_member

from .conftest import TINY, TRAIN, corr

ALPHA, M = 0.3, 8  # smallest p-value with m = 8 draws: 2/9 <= alpha


def _untrained(seeds):
    """Reference models of one architecture and correspondence, other seeds (cheap
    members of one group: what matters here is how many there are)."""
    return [(HookedTransformer(TINY.replace(seed=s)).eval(), corr("add_next")) for s in seeds]


def test_group_size_sets_the_null_and_the_decision(tmp_path, ref_zoo):
    """A group of MIN_MEMBERS references calibrates its null and decides (rejection was
    attainable); a group of two has no null and every capture is undecidable, said once
    by a warning naming it. The cached reference-to-reference similarities give the
    numbers of an uncached call."""
    refs = {
        "init": _untrained(range(20, 20 + MIN_MEMBERS)),
        "few": ref_zoo.select(task="all_equal"),
    }
    cap = ActivationCapture(10, n_probes=64)
    tracker = EquivalenceTracker(refs, capture=cap, m=M, alpha=ALPHA, n_boot=50)
    with pytest.warns(RuntimeWarning, match=r"no calibrated null: decisions against few \(2\)"):
        fit_member(
            task="add_next",
            model=TINY.replace(seed=7),
            correspondence=corr("add_next"),
            train=TRAIN.replace(seed=7, max_steps=20),
            ckpt_dir=tmp_path / "run",
            logger=False,
            callbacks=[cap, tracker],
        )
    curve = tracker.curve()
    for r in curve["init"]:
        assert r["null"] == "calibrated" and r["min_p_value"] <= ALPHA
        assert r["decision"] in ("rejected", "equivalent") and r["undecidable"] == 0
        assert r["rejected"] + r["equivalent"] == MIN_MEMBERS
        assert math.isfinite(r["congruity"]) and math.isfinite(r["rejection_rate"])
    for r in curve["few"]:
        assert r["null"] == "none" and r["min_p_value"] > ALPHA
        assert r["decision"] == "undecidable" and r["undecidable"] == 2
        assert math.isnan(r["rejection_rate"])  # no decidable pair: not a rate of 0
    # the references' similarities were computed once: C(4, 2) + C(2, 2) pairs, cached
    assert len(tracker._ref_sims) == 6 + 1
    rec = cap.records[-1]
    units = [tracker._trained_unit(rec), *tracker.ref_units]
    rows = pairwise_congruity(units, [(0, k) for k in range(1, len(units))], alpha=ALPHA)
    fresh = {
        g: group_values([r for r in rows if r["group_b"] == g], n_boot=50, seed=0) for g in refs
    }
    assert json.dumps(tracker.evaluate(rec)) == json.dumps(fresh)
    with open(tmp_path / "run" / "equivalence_curve.csv") as fh:
        table = list(csv.DictReader(fh))
    assert {r["decision"] for r in table if r["group"] == "few"} == {"undecidable"}
    assert {r["decision"] for r in table if r["group"] == "init"} <= {"rejected", "equivalent"}
    assert (tmp_path / "run" / "equivalence_curve.png").stat().st_size > 10_000


def test_intervention_null_decides_small_groups_and_training_is_refused(ref_zoo):
    refs = {"few": ref_zoo.select(task="all_equal")}
    with pytest.raises(ValueError, match="unknown impls"):
        EquivalenceTracker(refs, impls="calibrated-ish")
    with pytest.raises(ValueError, match="alone in its group"):
        EquivalenceTracker(refs, impls="training")
    tracker = EquivalenceTracker(refs, m=M, alpha=ALPHA, impls="intervention", n_boot=50)
    assert tracker.impls == "intervention"
