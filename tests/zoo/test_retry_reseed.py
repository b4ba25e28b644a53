"""retry mode continue_then_reseed: continuations, then fresh seeds, recorded per
attempt; and the final warning says what was tried."""

import pytest

from interpeq.zoo import ZooSpec, ZooStore
from interpeq.zoo.retry import RetrySpec, retry_member, unconverged_warning


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from interpeq.training import fit_member

    tmp = tmp_path_factory.mktemp("retry")
    spec = ZooSpec.from_dict(
        {
            "name": "rz",
            "tasks": ["add_next"],
            "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
            "train": {
                "max_steps": 10,
                "batch_size": 32,
                "val_every": 5,
                "val_size": 64,
                "test_size": 64,
            },
        }  # fmt: skip
    )
    (member,) = spec.members()
    store = ZooStore(tmp, "rz")
    res = fit_member(
        task=member.task, model=member.model, correspondence=member.correspondence,
        train=member.train, ckpt_dir=tmp / "first",
    )  # fmt: skip
    return member, store, res


def policy(**thresholds) -> RetrySpec:
    return RetrySpec.from_dict(
        {"mode": "continue_then_reseed", "steps": 10, "max_tries": 1, "reseeds": 2,
         "thresholds": thresholds}
    )  # fmt: skip


def test_unreachable_thresholds_continue_then_reseed_up_to_the_limit(trained):
    member, store, res = trained
    retry = policy(iia=1.01)  # no model reaches it
    assert retry.total_tries == 3
    assert [retry.attempt_mode(a) for a in (1, 2, 3)] == ["continue", "reseed", "reseed"]
    kept, info = retry_member(member, store, res, retry)
    assert [h["mode"] for h in info["history"]] == ["initial", "continue", "reseed", "reseed"]
    assert info["attempts"] == 3 and info["reseeded"] and not info["converged"]
    margins = [min(h["iia"] - 1.01, 0) for h in info["history"]]
    assert margins[info["kept"]] == max(margins)  # the best attempt is kept
    assert info["best_iia"] == pytest.approx(kept.metrics["iia"], abs=1e-4)
    events = (store.dir / "events.jsonl").read_text()
    assert events.count('"retry"') == 3 and '"mode": "reseed"' in events
    line = unconverged_warning([member.id], retry, {member.id: info})
    assert "continue_then_reseed" in line and "1 continue, 2 reseed" in line
    assert f"best IIA {info['best_iia']}" in line and "set retry:" not in line


def test_reachable_thresholds_stop_at_the_first_attempt_that_converges(trained):
    member, store, res = trained
    res.metrics = {**res.metrics, "iia": 0.0}  # the first training "missed"
    retry = policy(acc=0.0, iia=1e-9, strict_acc=0.0)
    kept, info = retry_member(member, store, res, retry)
    if info["history"][1]["iia"] >= 1e-9:  # the continuation reached it: no reseed
        assert info["attempts"] == 1 and info["converged"] and not info["reseeded"]
    else:  # otherwise a fresh seed did
        assert info["reseeded"] and info["converged"]


def test_warning_without_retry_says_none_ran_and_keys_validate():
    line = unconverged_warning(["a", "b"], RetrySpec())
    assert "no retry ran" in line and "set retry:" in line
    assert unconverged_warning([], RetrySpec()) == ""
    with pytest.raises(ValueError, match="retry.reseeds must be a positive int"):
        RetrySpec.from_dict({"mode": "continue_then_reseed", "reseeds": 0})
    with pytest.raises(ValueError, match="continue_then_reseed"):
        RetrySpec.from_dict({"mode": "bogus"})
