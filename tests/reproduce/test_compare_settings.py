"""The reproduce studies decide with the calibrated null first and can use the paper
code's score (compare.similarity in the experiment YAML)."""

import pytest

from interpeq.reproduce.config import CompareSettings


def test_headline_null_is_calibrated_and_similarity_is_selectable():
    assert CompareSettings().impls == ["auto"]
    assert CompareSettings(similarity="paper").similarity == "paper"
    with pytest.raises(ValueError, match=r"compare.similarity must be one of \[.*'papr'"):
        CompareSettings(similarity="papr")


@pytest.mark.parametrize("name", ["toy_cpu", "toy_paper", "settings_cpu", "matched_cpu"])
def test_shipped_experiments_lead_with_the_calibrated_null(name):
    import yaml

    from interpeq.resources import config_path

    data = yaml.safe_load(open(config_path("experiment", f"{name}.yaml")))
    assert data["compare"]["impls"][0] == "auto"
