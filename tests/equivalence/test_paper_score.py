"""The paper code's similarity (``method="paper"``): one direction, sklearn ``RidgeCV()``'s
grid, a 90/10 split; the same numbers as sklearn on the same split, and selectable."""

import json
import math

import pytest
import torch

from interpeq.equivalence import congruity, similarity_matrix
from interpeq.equivalence.checks import split_indices
from interpeq.equivalence.similarity import (
    PAPER_ALPHAS,
    SIMILARITY_METHODS,
    check_method,
    pair_scores,
)
from tests.conftest import tiny_zoo

sklearn_linear = pytest.importorskip("sklearn.linear_model")


def _paper_reference(x, y, seed):
    """The paper code's ``encoder_fit(X, Y)`` on interpeq's seeded split:
    ``RidgeCV(alpha_per_target=False, fit_intercept=True)`` (default alphas 0.1, 1, 10)
    on 90% of the rows, ``sqrt(max(R2, 0))`` on the held-out 10%."""
    train, test = split_indices(x.shape[0], 0.1, seed)
    xn, yn = x.numpy(), y.numpy()
    lin = sklearn_linear.RidgeCV(alpha_per_target=False, fit_intercept=True)
    assert tuple(lin.alphas) == PAPER_ALPHAS  # the paper code relies on the default
    lin.fit(xn[train], yn[train])
    return math.sqrt(max(lin.score(xn[test], yn[test]), 0.0))


def _data(seed, n, da, db, noise):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, da, generator=g, dtype=torch.float64)
    w = torch.randn(da, db, generator=g, dtype=torch.float64) / da**0.5
    b = a @ w + noise * torch.randn(n, db, generator=g, dtype=torch.float64)
    return a, b


CASES = [  # (n, Da, Db, noise): tall and wide sources, good to useless fits
    (120, 8, 5, 0.3),
    (120, 8, 5, 3.0),
    (60, 80, 12, 0.5),
    (200, 30, 30, 1.0),
    (50, 4, 60, 0.1),
    (90, 16, 3, 10.0),
]


@pytest.mark.parametrize("precision", ["double", "mixed"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_paper_score_equals_sklearn(case, precision):
    n, da, db, noise = CASES[case]
    a, b = _data(case, n, da, db, noise)
    for seed in (0, 3):
        got = pair_scores([a, b], [(0, 1)], method="paper", seed=seed, precision=precision)
        want = _paper_reference(a, b, seed)  # a -> b: b predicted from a
        assert got.shape == (1, 2) and float(got[0, 0]) == float(got[0, 1])
        assert float(got[0, 0]) == pytest.approx(want, abs=1e-4)


def test_one_direction_in_both_columns():
    a, b = _data(11, 120, 20, 4, 0.2)  # a predicts b well, b (4 columns) not a (20)
    paper = pair_scores([a, b], [(0, 1), (1, 0)], method="paper", seed=1)
    both = pair_scores([a, b], [(0, 1)], seed=1, alphas=PAPER_ALPHAS)[0]
    assert paper[0, 0] == pytest.approx(float(both[0]), abs=1e-10)  # a -> b
    assert paper[1, 0] == pytest.approx(float(both[1]), abs=1e-10)  # b -> a
    assert float(paper[0, 0]) > float(paper[1, 0]) + 0.2
    assert float(paper[0, 0]) == pytest.approx(_paper_reference(a, b, 1), abs=1e-4)
    assert float(paper[1, 0]) == pytest.approx(_paper_reference(b, a, 1), abs=1e-4)
    sm = similarity_matrix([a, b], method="paper", seed=1)  # i -> j for i < j, both cells
    assert sm[0, 1] == sm[1, 0] and float(sm[0, 1]) == pytest.approx(float(paper[0, 0]), abs=1e-6)


def test_paper_in_congruity():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(80, 6, generator=g, dtype=torch.float64)
    b = a @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    ia = a + 0.3 * torch.randn(10, 80, 6, generator=g, dtype=torch.float64)
    ib = b + 0.3 * torch.randn(10, 80, 6, generator=g, dtype=torch.float64)
    r = congruity(a, ia, b, ib, alpha=0.2, method="paper")
    assert 0 <= r.congruity <= 1 and len(r.d_a_impls) == 10
    # the base pair's distance is 1 - score(a -> b)
    assert r.d_ab == pytest.approx(1 - _paper_reference(a, b, 0), abs=1e-4)


def test_method_is_accepted_and_a_typo_is_one_clear_line():
    assert "paper" in SIMILARITY_METHODS and check_method("paper") == "paper"
    with pytest.raises(ValueError) as err:
        check_method("papr")
    msg = str(err.value)
    assert "\n" not in msg and "'papr'" in msg and "paper" in msg and "ridge" in msg


def test_other_grid_or_split_is_refused():
    a, b = _data(2, 60, 5, 3, 0.5)
    same = pair_scores([a, b], [(0, 1)], method="paper", alphas=[0.1, 1, 10], test_fraction=0.1)
    assert float(same[0, 0]) == pytest.approx(_paper_reference(a, b, 0), abs=1e-4)
    with pytest.raises(ValueError, match="paper's alphas"):
        pair_scores([a, b], [(0, 1)], method="paper", alphas=[1.0])
    with pytest.raises(ValueError, match="holds out 0.1 of the rows"):
        pair_scores([a, b], [(0, 1)], method="paper", test_fraction=0.2)


def test_settings_accept_paper():
    from interpeq.experiment.spec import _compare

    spec = _compare({"similarity": "paper"})
    assert spec.options()["similarity"] == "paper"
    assert _compare(True).options()["similarity"] == "ridge"
    with pytest.raises(ValueError, match=r"compare.similarity must be one of \[.*'papr'"):
        _compare({"similarity": "papr"})


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    return tiny_zoo(tmp_path_factory.mktemp("root"), "paper", ["add_next", "divide_by_max"]).path


def test_compare_with_the_paper_score(zoo_dir, capsys):
    from interpeq.compare import main

    base = [str(zoo_dir), "--logger", "none", "--no-progress", "--m", "6", "--n-probes", "48"]
    assert main([*base, "--impls", "intervention", "--similarity", "paper"]) == 0
    folder = zoo_dir / "equivalence" / "impls-intervention-similarity-paper"
    results = json.loads((folder / "results.json").read_text())
    assert results["summary"]["similarity"] == "paper"
    pairs = results["pairs"]
    assert len(pairs) == 6 and all(0 <= p["similarity"] <= 1 for p in pairs)
    assert all(0 <= p["congruity"] <= 1 for p in pairs)
    with pytest.raises(SystemExit) as stop:  # argparse: the choices come from SIMILARITY_METHODS
        main([*base, "--similarity", "papr"])
    assert stop.value.code == 2 and "invalid choice: 'papr'" in capsys.readouterr().err
