"""The member bootstrap of group summaries: coverage where pairs share members, the
definition of one replicate, determinism, and the labelled fallback to pairs."""

import math

import pytest
import torch

from interpeq.equivalence import CongruityResult, group_summary
from interpeq.equivalence.bootstrap import member_bootstrap, member_keys, pair_bootstrap

TRUE_MEAN = 0.5


def _within(gen, n, su=0.1, se=0.05):
    """All pairs of ``n`` members of one group, ``c_ab = 0.5 + u_a + u_b + noise``."""
    u = torch.randn(n, generator=gen, dtype=torch.float64) * su
    e = torch.randn(n, n, generator=gen, dtype=torch.float64) * se
    return [
        dict(a=f"m{i}", b=f"m{j}", group_a="A", group_b="A", reject=False,
             congruity=float(TRUE_MEAN + u[i] + u[j] + e[i, j]))
        for i in range(n) for j in range(i + 1, n)
    ]  # fmt: skip


def _between(gen, na, nb, su=0.1, se=0.05):
    """All cross pairs of two groups, ``c_ab = 0.5 + u_a + v_b + noise``."""
    u = torch.randn(na, generator=gen, dtype=torch.float64) * su
    v = torch.randn(nb, generator=gen, dtype=torch.float64) * su
    e = torch.randn(na, nb, generator=gen, dtype=torch.float64) * se
    return [
        dict(a=f"a{i}", b=f"b{j}", group_a="A", group_b="B", reject=False,
             congruity=float(TRUE_MEAN + u[i] + v[j] + e[i, j]))
        for i in range(na) for j in range(nb)
    ]  # fmt: skip


def _anonymous(rows):
    """The same rows without member ids: only the pair bootstrap applies."""
    return [{k: v for k, v in r.items() if k not in ("a", "b")} for r in rows]


def _coverage(make, reps=200):
    gen = torch.Generator().manual_seed(0)
    hits = {"members": 0, "pairs": 0}
    for r in range(reps):
        rows = make(gen)
        for kind, rs in (("members", rows), ("pairs", _anonymous(rows))):
            s = group_summary(rs, seed=r)
            assert s.bootstrap == kind
            hits[kind] += s.ci_low <= TRUE_MEAN <= s.ci_high
    return {k: v / reps for k, v in hits.items()}


@pytest.mark.parametrize(
    "make",
    [lambda g: _within(g, 20), lambda g: _between(g, 10, 10)],
    ids=["within_20_members", "between_10x10_members"],
)
def test_member_bootstrap_covers_when_pairs_share_members(make):
    # Member effects dominate: the pair mean varies like a mean over ~n members, not
    # over n^2 / 2 pairs. Measured: members 0.92 / 0.92, pairs 0.32 / 0.39.
    cov = _coverage(make)
    assert cov["members"] >= 0.88
    assert cov["pairs"] <= 0.6
    assert cov["members"] - cov["pairs"] >= 0.3


def _explicit_replicate(values, keys_a, keys_b, seed):
    """One replicate built as the definition says: draw each group's members with
    replacement (same generator calls as member_bootstrap), then average the pairs among
    the drawn members (within) or across the two draws (between), by position."""
    members: dict = {}
    for key in (*keys_a, *keys_b):
        members.setdefault(key[0], [])
        if key not in members[key[0]]:
            members[key[0]].append(key)
    gen = torch.Generator().manual_seed(seed)
    drawn = {}
    for g in sorted(members):
        idx = torch.randint(0, len(members[g]), (1, len(members[g])), generator=gen)[0]
        drawn[g] = [members[g][i] for i in idx.tolist()]
    total, count = 0.0, 0
    for ka, kb, v in zip(keys_a, keys_b, values.tolist(), strict=True):
        if ka[0] == kb[0]:  # within: unordered pairs of draw positions, never p with p
            da = drawn[ka[0]]
            pos = [(p, q) for p in range(len(da)) for q in range(p + 1, len(da))]
            times = sum({da[p], da[q]} == {ka, kb} for p, q in pos)
        else:  # between: every draw of one group with every draw of the other
            times = drawn[ka[0]].count(ka) * drawn[kb[0]].count(kb)
        total += times * v
        count += times
    return total / count if count else math.nan


@pytest.mark.parametrize("seed", range(6))
def test_one_replicate_is_the_pairs_among_the_drawn_members(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    rows = _within(gen, 5) + _between(gen, 3, 4)
    keys_a, keys_b = member_keys(rows)
    c = torch.tensor([r["congruity"] for r in rows], dtype=torch.float64)
    lo, hi = member_bootstrap(c, keys_a, keys_b, n_boot=1, ci=0.95, seed=seed)
    want = _explicit_replicate(c, keys_a, keys_b, seed)
    assert lo == pytest.approx(want, abs=1e-12) and hi == pytest.approx(want, abs=1e-12)


def test_deterministic_under_a_seed():
    gen = torch.Generator().manual_seed(7)
    rows = _within(gen, 8) + _between(gen, 4, 5)
    assert group_summary(rows, seed=3) == group_summary(rows, seed=3)
    assert group_summary(rows, seed=3).ci_low != group_summary(rows, seed=4).ci_low
    s = group_summary(rows, seed=3)
    assert s.bootstrap == "members" and s.ci_low < s.mean_congruity < s.ci_high


def test_fallback_to_pairs_is_labelled_and_unchanged():
    res = [CongruityResult(0.1 * k, 0.5, 0.5, k % 3 == 0, 0.05, 40, 0.1, (), ()) for k in range(10)]
    s = group_summary(res, n_boot=500, seed=2)
    assert s.bootstrap == "pairs"
    # the pair bootstrap as group_summary computed it before members were resampled
    c = torch.tensor([r.congruity for r in res], dtype=torch.float64)
    idx = torch.randint(0, 10, (500, 10), generator=torch.Generator().manual_seed(2))
    q = torch.tensor([0.025, 0.975], dtype=torch.float64)
    assert (s.ci_low, s.ci_high) == tuple(torch.quantile(c[idx].mean(1), q).tolist())
    assert (s.ci_low, s.ci_high) == pair_bootstrap(c, n_boot=500, ci=0.95, seed=2)
    assert (s.n_rejected, s.n_equivalent, s.n_undecidable) == (4, 6, 0)
    assert s.rejection_rate == pytest.approx(0.4)
    # one dict without member ids is enough to fall back
    rows = _within(torch.Generator().manual_seed(1), 4)
    rows[-1] = {k: v for k, v in rows[-1].items() if k != "group_b"}
    assert member_keys(rows) is None and group_summary(rows).bootstrap == "pairs"


def test_nan_congruities_are_ignored_and_decisions_counted():
    rows = _within(torch.Generator().manual_seed(5), 6)
    rows[0] = dict(rows[0], reject=True, decision="rejected")
    extra = [dict(rows[1], congruity=math.nan, decision="undecidable")]
    with_nan = group_summary(rows + extra, seed=1)
    without = group_summary(rows, seed=1)
    assert with_nan.bootstrap == "members"
    assert (with_nan.mean_congruity, with_nan.ci_low, with_nan.ci_high) == (
        without.mean_congruity,
        without.ci_low,
        without.ci_high,
    )
    assert (with_nan.n_pairs, with_nan.n_rejected, with_nan.n_undecidable) == (16, 1, 1)
    assert with_nan.n_equivalent == 14 and with_nan.rejection_rate == pytest.approx(1 / 15)
    only_nan = group_summary([dict(rows[0], congruity=math.nan)])
    assert math.isnan(only_nan.mean_congruity) and math.isnan(only_nan.ci_low)


def test_mismatched_keys_are_one_clear_error():
    with pytest.raises(ValueError, match="one pair each"):
        member_bootstrap(torch.ones(3), [("A", 1)], [("A", 2)], n_boot=10, ci=0.9, seed=0)
