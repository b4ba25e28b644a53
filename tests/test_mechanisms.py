"""The mechanism study's arithmetic: per reading, false rejections among same-task pairs
and separation of each behaviour-matched pair, and which readings count as useful."""

from interpeq.reproduce.mechanisms import reading_options, reading_rows, useful_readings

MATCHED = [("p", "p_sum"), ("e", "e_minmax")]


def pair(a, b, reject, similarity):
    return {"group_a": a, "group_b": b, "reject": reject, "similarity": similarity}


def pairs(cross_reject_p, cross_reject_e, same_reject):
    same = [pair(t, t, same_reject and t == "p", 0.9) for t in ("p", "p_sum", "e", "e_minmax")]
    cross = [pair("p", "p_sum", k < cross_reject_p, 0.5) for k in range(4)]
    cross += [pair("e_minmax", "e", k < cross_reject_e, 0.7) for k in range(4)]
    return same + cross + [pair("p", "e", True, 0.1)]  # unrelated tasks: not counted


def test_rows_count_controls_and_cross_pairs_per_matched_pair():
    rows = reading_rows("layer-1", "auto", pairs(3, 1, same_reject=True), MATCHED)
    assert [(r["pair"], r["cross_rejected"], r["cross_pairs"]) for r in rows] == [
        ("p vs p_sum", 3, 4),
        ("e vs e_minmax", 1, 4),
    ]
    assert all(r["same_task_rejected"] == 1 and r["same_task_pairs"] == 4 for r in rows)
    assert rows[0]["similarity_same_task"] == 0.9 and rows[0]["similarity_cross"] == 0.5


def test_useful_needs_two_separated_pairs_and_few_false_rejections():
    good = reading_rows("a", "auto", pairs(4, 3, same_reject=False), MATCHED)
    one_pair = reading_rows("b", "auto", pairs(4, 2, same_reject=False), MATCHED)
    assert useful_readings(good + one_pair) == [("a", "auto")]
    assert useful_readings(good, max_false=-1) == []  # no false rejection allowed at all


def test_a_reading_is_a_similarity_or_a_representation():
    assert reading_options("cka") == {"similarity": "cka"}
    assert reading_options("layer-2") == {"representation": "layer-2"}


def test_group_matrix_cells_carry_the_decision(monkeypatch, tmp_path):
    """The reproduce matrices colour by mean congruity; each cell also says how many of its
    pairs the test rejected and frames the mostly-rejected ones, so a high congruity that
    the test rejects (one direction far, the other close) does not read as equivalent."""
    import numpy as np

    from interpeq.report import summary_plots

    seen = {}
    monkeypatch.setattr(summary_plots, "save_figure", lambda fig, path: seen.setdefault("fig", fig))
    mean = np.array([[0.9, 0.93], [0.93, np.nan]])
    summary_plots.group_matrix_plot(
        mean, mean - 0.1, mean + 0.05, ["a", "b"], tmp_path / "m.png",
        rejection=np.array([[0.0, 1.0], [1.0, np.nan]]), n_pairs=np.array([[3, 1], [1, 0]]),
    )  # fmt: skip
    ax = seen["fig"].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts[0].endswith("rejected 0/3") and texts[1].endswith("rejected 1/1")
    assert texts[3] == "no pairs"
    frames = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(frames) == 2  # the two rejected cells, not the accepted diagonal
