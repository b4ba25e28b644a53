"""Three outcomes everywhere a comparison is reported: a pair whose nulls cannot reach
alpha is "undecidable" in the summary text, decisions.csv, results.json, W&B and the
figures, never counted as equivalent."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from interpeq.compare.files import congruity_matrix, results_payload, write_files
from interpeq.compare.log import log_compare
from interpeq.compare.result import CompareResult, summarize
from interpeq.equivalence import Unit, group_pairs, pairwise_congruity
from interpeq.report import plots, summary_plots
from tests.equivalence.synthetic import fake_cross

M = 40
SETTINGS = {"zoo": "z", "against": None, "n_probes": 4, "m": M, "alpha": 0.05, "seed": 0}


def synthetic_zoo(sizes: dict[str, int], seed: int = 0, m: int = M):
    """Units of groups with ``sizes[group]`` members, draws like the between-member
    distances (0.2 within a group, 0.8 across), similarities from a fake ``cross``."""
    gen = torch.Generator().manual_seed(seed)
    units = []
    for g, n in sizes.items():
        for k in range(n):
            u = Unit(f"{g}-s{k}", g, torch.randn(4, 2, generator=gen), torch.zeros(m, 4, 2))
            u.self_d = 0.2 * (0.5 + torch.rand(m, generator=gen, dtype=torch.float64))
            units.append(u)
    return units, fake_cross(gen, 0.2, 0.8)


def compare_synthetic(sizes: dict[str, int], out, seed: int = 0, m: int = M) -> CompareResult:
    """What ``compare_zoo`` does after the representations, on a synthetic zoo."""
    units, cross = synthetic_zoo(sizes, seed, m)
    pairs = [(i, j) for i in range(len(units)) for j in range(i + 1, len(units))]
    rows = pairwise_congruity(units, pairs, alpha=0.05, cross=cross)
    groups = group_pairs(rows)
    settings = {**SETTINGS, "m": m, "impls": "auto", "units": "members"}
    summary = summarize(rows, units, settings)
    cols = list(range(len(units)))
    matrix = congruity_matrix(pairs, rows, len(units), cols, symmetric=True)
    pvalues = congruity_matrix(pairs, rows, len(units), cols, symmetric=True, key="p_value")
    payload = results_payload(summary, units, rows, groups)
    files = write_files(
        out, units, cols, matrix, payload, title="synthetic", row_label="z", col_label="z",
        pvalues=pvalues, alpha=0.05,
    )  # fmt: skip
    ids = [u.id for u in units]
    return CompareResult(out, files, rows, groups, summary, ids, ids, matrix)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    # "big": 4 members (calibrated null); "pair" and "duo": 2 members each (no null)
    return compare_synthetic({"big": 4, "pair": 2, "duo": 2}, tmp_path_factory.mktemp("eq"))


def test_groups_of_two_are_undecidable_not_equivalent(result):
    und = [r for r in result.pairs if r["decision"] == "undecidable"]
    # within "pair", within "duo", and the 4 pairs across them: no side has a null
    assert len(und) == 6
    assert {r["null_a"] for r in und} == {"none"} and all(r["members_needed"] == 4 for r in und)
    s = result.summary
    assert s["n_undecidable"] == 6 and s["n_rejected"] + s["n_equivalent"] == 28 - 6
    assert s["within_undecidable"] == 2 and s["across_undecidable"] == 4
    assert s["within_equivalent"] == 6 - s["within_rejected"]  # only "big" is decidable
    decidable = s["within_rejected"] + s["within_equivalent"]
    assert s["within_rejection_rate"] == pytest.approx(s["within_rejected"] / decidable)
    assert s["min_p_value"] == min(r["min_p_value"] for r in result.pairs)
    assert s["members_needed"] == 4 and s["undecidable_groups"] == ["duo", "pair"]
    groups = {(g["group_a"], g["group_b"]): g for g in result.groups}
    assert groups[("pair", "pair")]["n_undecidable"] == 1
    assert groups[("pair", "pair")]["n_equivalent"] == 0
    assert math.isnan(groups[("pair", "pair")]["rejection_rate"])


def test_summary_text_leads_with_the_three_counts(result):
    s = result.summary
    lines = result.summary_text().splitlines()
    within = (
        f"  within-group pairs  rejected {s['within_rejected']} / equivalent "
        f"{s['within_equivalent']} / undecidable 2"
    )
    assert lines[1] == within and lines[2].startswith("  across-group pairs  rejected ")
    assert lines[2].endswith("/ undecidable 4")
    congruity = next(ln for ln in lines if ln.startswith("  within-group mean congruity"))
    assert congruity.index("one-sided") < congruity.index("two-sided")
    assert "(the paper's form)" in congruity
    (note,) = [ln for ln in lines if "undecidable" in ln and "note" in ln]
    assert "6 pair(s) undecidable" in note and "not evidence of equivalence" in note
    assert "< 4 members have no calibrated null" in note and "at least 4 members" in note
    assert not any("narrow null" in ln for ln in lines)
    (row,) = [ln for ln in lines if ln.startswith("  pair ~ pair")]
    assert row.split()[3:7] == ["0", "/", "1", "0"] and row.split()[7] == "1"


def test_too_few_draws_is_told_apart_from_too_few_members(tmp_path):
    # 4 members per group (calibrated nulls), but m = 20 draws: 2 / 21 > alpha
    res = compare_synthetic({"a": 4, "b": 4}, tmp_path, m=20)
    s = res.summary
    assert s["n_undecidable"] == 28 and s["n_equivalent"] == s["n_rejected"] == 0
    assert s["undecidable_for_draws"] == 28 and s["undecidable_for_members"] == 0
    assert s["within_rejection_rate"] is None
    (note,) = [ln for ln in res.summary_text().splitlines() if "note:" in ln]
    assert "m=20 draws cannot reach alpha=0.05; use m >= 39" in note
    assert "members" not in note
    mixed = dict(s, undecidable_for_members=3, undecidable_for_draws=25)
    text = CompareResult(tmp_path, {}, [], [], mixed, [], [], None).summary_text()
    assert "3 pair(s): groups with < 4 members" in text and "25: m=20 draws" in text


def test_one_sided_score_comes_from_each_rows_rank_p(result):
    rows = [r for r in result.pairs if r["group_a"] == r["group_b"] and np.isfinite(r["p"])]
    one = [min(1.0, 2 * (1 - r["p"])) for r in rows]
    two = [1 - abs(2 * r["p"] - 1) for r in rows]
    assert result.summary["within_one_sided"] == pytest.approx(sum(one) / len(one))
    assert result.summary["within_two_sided"] == pytest.approx(sum(two) / len(two))


def test_decisions_csv_and_results_json_say_undecidable(result):
    with open(result.files["decisions.csv"]) as fh:
        header, *body = list(csv.reader(fh))
    with open(result.files["matrix.csv"]) as fh:
        mheader, *mbody = list(csv.reader(fh))
    assert header == mheader and [r[:2] for r in body] == [r[:2] for r in mbody]
    ids = header[2:]
    payload = json.loads(result.files["results.json"].read_text())
    for p in payload["pairs"]:
        i, j = ids.index(p["a"]), ids.index(p["b"])
        assert body[i][2 + j] == body[j][2 + i] == p["decision"]
        assert {"decision", "min_p_value", "null_a", "null_b"} <= set(p)
        assert ("members_needed" in p) == (p["decision"] == "undecidable")
    assert all(body[i][2 + i] == "" for i in range(len(ids)))
    pair = ids.index("pair-s0")
    assert body[pair][2 + ids.index("pair-s1")] == "undecidable"
    assert body[pair][2 + ids.index("duo-s0")] == "undecidable"
    assert {c for r in body for c in r[2:]} <= {"", "rejected", "equivalent", "undecidable"}
    assert payload["summary"]["n_undecidable"] == 6


def test_an_undecidable_cell_is_neither_red_nor_green():
    p = np.array([[0.01, 0.9, 0.9, np.nan]])
    d = np.array([["rejected", "equivalent", "undecidable", ""]], dtype=object)
    red, green, grey, blank = plots.decision_colours(p, 0.05, d)[0]
    for colour in (red, green, blank):
        assert not np.allclose(grey, colour)
    assert np.allclose(grey[:3], grey[0])  # neutral: no hue
    legend = [h.get_label() for h in plots.decision_legend(0.05)]
    assert [t.split()[0] for t in legend] == ["rejected", "equivalent", "undecidable"]


def test_pair_heatmap_names_members_and_shows_undecidable(result, monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, **_: seen.setdefault("f", fig))
    n = len(result.row_ids)
    decisions = np.full((n, n), "", dtype=object)
    pvals = np.full((n, n), np.nan)
    pos = {u: k for k, u in enumerate(result.row_ids)}
    for r in result.pairs:
        for a, b in ((r["a"], r["b"]), (r["b"], r["a"])):
            decisions[pos[a], pos[b]], pvals[pos[a], pos[b]] = r["decision"], r["p_value"]
    groups = [r.split("-")[0] for r in result.row_ids]
    plots.congruity_heatmap(
        result.matrix, groups, groups, tmp_path / "m.png", pvalues=pvals, decisions=decisions,
        row_ids=result.row_ids, col_ids=result.col_ids,
        group_stats={(g["group_a"], g["group_b"]): g for g in result.groups},
    )  # fmt: skip
    fig = seen["f"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == result.col_ids
    assert [t.get_text() for t in ax.get_yticklabels()] == result.row_ids
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 2 * 6  # both cells of every undecidable pair
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("undecidable") for t in labels)
    group_texts = [t.get_text() for t in fig.axes[1].texts]
    assert any("undecidable 1" in t for t in group_texts)
    assert result.files["matrix.png"].stat().st_size > 10_000  # the real file was written


def test_group_matrix_marks_cells_without_a_decidable_pair(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(
        summary_plots, "save_figure", lambda fig, path, **_: seen.setdefault("f", fig)
    )
    mean = np.array([[0.5, 0.2], [0.2, np.nan]])
    summary_plots.group_matrix_plot(
        mean, mean - 0.1, mean + 0.1, ["a", "b"], tmp_path / "g.png",
        rejection=np.array([[0.5, 1.0], [1.0, np.nan]]), n_pairs=np.array([[6, 4], [4, 1]]),
        undecidable=np.array([[2, 0], [0, 1]]),
    )  # fmt: skip
    ax = seen["f"].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts[0].endswith("rejected 2/4\nundecidable 2")
    assert texts[3] == "undecidable\n1/1 pairs"
    assert len([p for p in ax.patches if p.get_hatch()]) == 1


def test_equivalence_curve_marks_undecidable_steps(tmp_path):
    rows = [
        {"step": s, "congruity": c, "ci_low": c, "ci_high": c, "rejection_rate": r}
        for s, c, r in ((0, 0.7, 0.0), (50, math.nan, math.nan), (100, 0.1, 1.0))
    ]
    path = summary_plots.equivalence_curves({"ref": rows}, tmp_path / "curve.png")
    assert path.stat().st_size > 10_000


def test_wandb_summary_counts_the_three_outcomes_apart(result, monkeypatch):
    from interpeq.compare import log

    tables, summary = {}, {}
    monkeypatch.setattr(log, "log_image", lambda *a, **k: None)
    monkeypatch.setattr(log, "log_table", lambda lg, key, cols, rows: tables.update({key: cols}))
    monkeypatch.setattr(log, "log_summary", lambda lg, values: summary.update(values))
    log_compare(object(), result)
    assert "decision" in tables["equivalence/pairs"]
    assert {"n_rejected", "n_equivalent", "n_undecidable"} <= set(tables["equivalence/group_pairs"])
    assert summary["equivalence/n_undecidable"] == 6
    assert summary["equivalence/within_undecidable"] == 2
    assert summary["equivalence/pair~pair/n_undecidable"] == 1
