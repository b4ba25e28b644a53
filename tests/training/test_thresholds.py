"""One threshold type (interpeq.training.config.Thresholds) for early stopping on
validation metrics and for the converged flag on held-out metrics."""

import pytest

from interpeq.training.config import Thresholds, TrainConfig
from interpeq.zoo.retry import RetrySpec


def test_early_stopping_and_the_converged_flag_share_one_type():
    stop = TrainConfig(acc_threshold=0.97, iia_threshold=0.92, strict_threshold=0.92).thresholds
    flag = RetrySpec.from_dict({"mode": "reseed", "thresholds": {"iia": 0.88}}).thresholds
    assert type(stop) is type(flag) is Thresholds
    assert stop == Thresholds(0.97, 0.92, 0.92) and flag == Thresholds(0.95, 0.88, 0.90)
    val = {"val/acc": 0.98, "val/iia": 0.93, "val/strict_acc": 0.919}
    assert not stop.met(val, prefix="val/")  # strict 0.919 < 0.92
    assert stop.met({**val, "val/strict_acc": 0.92}, prefix="val/")
    held_out = {"acc": 0.96, "iia": 0.885, "strict_acc": 0.95}
    assert flag.met(held_out) and RetrySpec(thresholds=flag).converged(held_out)
    assert flag.margin(held_out) == pytest.approx(0.005)  # iia, the worst of the three
    assert not Thresholds().met(held_out)  # the default 0.90 IIA bar


def test_bad_thresholds_are_one_line():
    with pytest.raises(ValueError, match="unknown retry.thresholds \\['acc_threshold'\\]"):
        RetrySpec.from_dict({"thresholds": {"acc_threshold": 0.9}})
    with pytest.raises(ValueError, match="threshold iia must be a number >= 0, got -0.1"):
        RetrySpec.from_dict({"thresholds": {"iia": -0.1}})
