"""ActivationCapture + EquivalenceTracker: W&B offline / CSV logging, the curve, stacked runs, bad input."""

import csv
import json
import math

import pytest
import torch

from interpeq.callbacks import ActivationCapture, EquivalenceTracker, load_captures
from interpeq.report import make_logger, member_tags, offline_runs, read_offline_run
from interpeq.training import fit_member

from .conftest import TINY, TRAIN, corr

GROUPS = ("add_next", "all_equal")


def refs_of(zoo):
    return {t: zoo.select(task=t) for t in GROUPS}


def _fit(tmp_path, callbacks, logger=False, steps=60, task="add_next"):
    return fit_member(
        task=task,
        model=TINY.replace(seed=7),
        correspondence=corr(task),
        train=TRAIN.replace(seed=7, max_steps=steps),
        ckpt_dir=tmp_path / "run",
        logger=logger,
        callbacks=callbacks,
    )


def _no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_wandb_offline_curve_and_equivalence(tmp_path, monkeypatch, ref_zoo):
    """Both callbacks, W&B offline: history has equivalence keys at several steps, finite;
    the model trained to add_next ends more congruent to add_next than to all_equal.

    The reference groups have two models each: too few for the calibrated null, so this
    test opts into the raw intervention null (assumed wide enough), whose decisions are
    attainable here (m = 20: smallest p-value 2/21 <= alpha = 0.1)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = make_logger(
        "wandb",
        run_name="add_next-D-s7",
        group="refs",
        job_type="fit",
        config={"zoo": "refs", "task": "add_next"},
        tags=member_tags("add_next", "D", "refs"),
        save_dir=tmp_path,
    )
    cap = ActivationCapture(15, n_probes=128)
    tracker = EquivalenceTracker(
        refs_of(ref_zoo), capture=cap, m=20, alpha=0.1, impls="intervention"
    )
    result = _fit(tmp_path, [cap, tracker], logger)
    logger.finish()

    run = read_offline_run(offline_runs(tmp_path)[-1])
    assert (run["name"], run["group"], run["job_type"]) == ("add_next-D-s7", "refs", "fit")
    assert "task:add_next" in run["tags"] and "setting:D" in run["tags"]
    assert run["config"]["zoo"] == "refs" and "model" in run["config"]  # + Lightning's hparams
    for g in GROUPS:
        key = f"equivalence/{g}/congruity"
        rows = [h for h in run["history"] if key in h]
        assert [h["trainer/global_step"] for h in rows] == [0, 15, 30, 45, 60]
        for h in rows:
            for k in (
                "rejected",
                "equivalent",
                "undecidable",
                "min_p_value",
                "congruity",
                "congruity_ci_low",
                "congruity_ci_high",
                "rejection_rate",
                "similarity",
            ):
                assert math.isfinite(h[f"equivalence/{g}/{k}"])
            assert h[f"equivalence/{g}/undecidable"] == 0
        assert math.isfinite(run["summary"][f"equivalence_final/{g}/congruity"])

    # the curve: trained to interpretation A -> more congruent to A's references than B's
    final = {g: tracker.curve()[g][-1] for g in GROUPS}
    assert final["add_next"]["congruity"] > final["all_equal"]["congruity"]
    assert final["all_equal"]["min_p_value"] <= 0.1  # rejection was attainable
    assert final["all_equal"]["rejection_rate"] == 1.0
    assert final["all_equal"]["decision"] == "rejected" and final["all_equal"]["rejected"] == 2
    assert final["add_next"]["null"] == "intervention"
    assert run["summary"]["equivalence_final/all_equal/decision"] == "rejected"

    # captures: in memory, on disk as a datasets.Dataset, hooks gone, plot written
    ds = load_captures(tmp_path / "run")
    assert [int(s) for s in ds["step"]] == [0, 15, 30, 45, 60]
    assert tuple(ds[0]["reprs"].shape) == (128, 3 * 16)
    assert torch.allclose(ds[len(ds) - 1]["reprs"], cap.records[-1].reprs)
    assert set(ds["member_id"]) == {"run"}  # default ids: the run folder name
    assert _no_hooks(result.model)
    assert (tmp_path / "run" / "equivalence_curve.png").stat().st_size > 10_000


def test_csv_logger_curve(tmp_path, ref_zoo):
    """The default (calibrated) null against a group of two references: every capture
    is undecidable, said by a warning, the counts, a NaN rejection rate (not 0) and the
    ``decision`` column of the curve's CSV."""
    logger = make_logger("csv", run_name="m", group="g", config={"a": 1}, save_dir=tmp_path)
    tracker = EquivalenceTracker(
        {"A": ref_zoo.select(task="add_next")}, every_n_steps=10, m=8, alpha=0.3
    )
    with pytest.warns(RuntimeWarning, match=r"no calibrated null: decisions against A \(2\)"):
        _fit(tmp_path, [tracker], logger, steps=30)
    with open(tmp_path / "g" / "m" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("equivalence/A/similarity")]
    assert [int(r["step"]) for r in rows] == [0, 10, 20, 30]
    assert all(math.isfinite(float(r["equivalence/A/similarity"])) for r in rows)
    assert all(float(r["equivalence/A/undecidable"]) == 2 for r in rows)
    assert all(math.isnan(float(r["equivalence/A/rejection_rate"])) for r in rows)
    assert (tmp_path / "run" / "captures").is_dir()  # the tracker made its own capture
    with open(tmp_path / "run" / "equivalence_curve.csv") as fh:
        curve = list(csv.DictReader(fh))
    assert [r["decision"] for r in curve] == ["undecidable"] * 4
    assert {r["null"] for r in curve} == {"none"}


def test_stacked_training_captures_every_member(tmp_path, ref_zoo):
    from interpeq.training.stacked import fit_stacked

    members = [
        (t, corr(t), TRAIN.replace(seed=s, max_steps=20), TINY.replace(seed=s))
        for t, s in (("add_next", 3), ("all_equal", 4))
    ]
    cap = ActivationCapture(10, n_probes=64, member_ids=["a", "b"])
    tracker = EquivalenceTracker(ref_zoo.select(task="all_equal"), capture=cap, m=4, alpha=0.45)
    fit_stacked(members, TINY, ckpt_dir=tmp_path, callbacks=[cap, tracker])
    assert [(r.member_id, r.step) for r in cap.records] == [
        (m, s) for s in (0, 10, 20) for m in "ab"
    ]
    assert set(tracker.history) == {"a", "b"} and len(tracker.history["a"]["all_equal"]) == 3


def test_bad_input_fails_before_training(tmp_path, ref_zoo):
    with pytest.raises(ValueError, match="every_n_steps must be a positive int"):
        ActivationCapture(0)
    with pytest.raises(ValueError, match="every_n_steps must be a positive int"):
        EquivalenceTracker(ref_zoo.select(task="add_next"), every_n_steps=0)
    with pytest.raises(ValueError, match="does not exist"):
        EquivalenceTracker(str(tmp_path / "no_such_zoo"))
    with pytest.raises(ValueError, match="no member of zoo"):
        EquivalenceTracker(f"{ref_zoo.path}:task=rank")
    assert (
        len(EquivalenceTracker(f"{ref_zoo.path}:task=add_next,setting=D").groups["add_next"]) == 2
    )
    # a reference of another task with another vocabulary: error at setup, no step trained
    from interpeq.models import HookedTransformer

    other = HookedTransformer(TINY.replace(d_vocab=20, d_vocab_out=19))
    tracker = EquivalenceTracker(
        {"other": (other, corr("all_equal"))}, every_n_steps=5, m=4, alpha=0.45
    )
    with pytest.raises(ValueError, match="vocabulary 20"):
        _fit(tmp_path, [tracker], steps=5)
    assert not list((tmp_path / "run").glob("step=*.ckpt"))


def test_logging_failure_does_not_kill_training(tmp_path, monkeypatch, ref_zoo):
    from lightning.pytorch.loggers import CSVLogger

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(CSVLogger, "log_metrics", boom)
    logger = make_logger("csv", run_name="m", group="g", save_dir=tmp_path)
    tracker = EquivalenceTracker(ref_zoo.select(task="add_next"), every_n_steps=5, m=4, alpha=0.45)
    with pytest.warns(RuntimeWarning, match="logging failed"):
        result = _fit(tmp_path, [tracker], logger, steps=5)
    assert result.metrics["steps"] == 5


def test_wandb_mode_offline_without_account(tmp_path, monkeypatch):
    from interpeq.report import wandb_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode() == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"
    with pytest.raises(ValueError, match="unknown logger"):
        make_logger("tensorboard", run_name="x")


def test_background_analysis_gives_the_inline_numbers(tmp_path, ref_zoo):
    """The worker thread computes what the training thread would: the same curve to the
    last bit, at the same steps, while the model it read kept training (the intervention
    null: the worker computes the trained model's co-implementations from its snapshot;
    the calibrated null never reads the model)."""
    curves = {}
    for background in (True, False):
        tracker = EquivalenceTracker(
            refs_of(ref_zoo),
            every_n_steps=10,
            m=6,
            alpha=0.3,
            background=background,
            impls="intervention",
        )
        _fit(tmp_path / str(background), [tracker], steps=30)
        curves[background] = json.dumps(tracker.history["run"])  # NaN-aware, exact repr
        assert tracker.jobs.pending == 0 and tracker.seconds > 0
    assert [r["step"] for r in json.loads(curves[True])["add_next"]] == [0, 10, 20, 30]
    assert curves[True] == curves[False]


def test_a_failed_analysis_stops_training_naming_member_and_step(tmp_path, monkeypatch, ref_zoo):
    def broken(self, record):
        if record.step == 10:
            raise FloatingPointError("singular")
        return {"add_next": {"congruity": 0.5}}

    monkeypatch.setattr(EquivalenceTracker, "evaluate", broken)
    tracker = EquivalenceTracker(refs_of(ref_zoo), every_n_steps=10, m=4, alpha=0.3)
    with pytest.raises(RuntimeError, match="tracking of 'run' at step 10 failed: Floating"):
        _fit(tmp_path, [tracker], steps=40)
    assert [r["step"] for r in tracker.history["run"]["add_next"]] == [0]  # kept


def test_an_interrupt_keeps_the_curve_analysed_so_far(tmp_path, ref_zoo):
    from lightning.pytorch.callbacks import Callback

    class StopAt(Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 25:
                raise ValueError("stop here")

    tracker = EquivalenceTracker(refs_of(ref_zoo), every_n_steps=10, m=4, alpha=0.3)
    with pytest.raises(ValueError, match="stop here"):
        _fit(tmp_path, [tracker, StopAt()], steps=40)
    assert [r["step"] for r in tracker.history["run"]["add_next"]] == [0, 10, 20]
    assert tracker.jobs.pending == 0
