"""The comparison's options are declared once (interpeq.compare.options.CompareOptions):
the CLI flags, the YAML sections, compare_zoo's keywords, the output folder and what
results.json records all come from it, and a bad value fails the same way from every
source."""

import inspect
from dataclasses import fields

import pytest

from interpeq.compare import compare_zoo
from interpeq.compare.cli import build_parser
from interpeq.compare.options import (
    FOLDER_OPTIONS,
    OPTION_DEFAULTS,
    TUNING_OPTIONS,
    CompareOptions,
    option_defaults,
)
from interpeq.experiment import CompareSpec, ExperimentSpec
from interpeq.reproduce import ExperimentConfig
from interpeq.reproduce.config import CompareSettings

NAMES = [f.name for f in fields(CompareOptions)]
DEFAULTS = option_defaults()


def test_cli_flags_are_generated_from_the_options():
    args = build_parser().parse_args(["z"])
    flags = {a.dest: a for a in build_parser()._actions}
    for name in NAMES:
        assert name in flags, name
        assert getattr(args, name) == DEFAULTS[name], name
        assert flags[name].help.startswith(
            CompareOptions.__dataclass_fields__[name].metadata["help"]
        )
    assert CompareOptions.from_args(args) == CompareOptions()


def test_every_other_reader_takes_the_same_options_and_defaults():
    sig = inspect.signature(compare_zoo).parameters
    assert {n: sig[n].default for n in NAMES} == DEFAULTS  # the Python API
    spec = CompareSpec()
    assert {n: getattr(spec, n) for n in NAMES} == DEFAULTS  # zoo / experiment YAML
    assert {f.name for f in fields(CompareSpec)} == {*NAMES, "enabled"}
    s = CompareSettings()  # the reproduce studies (impls is a list there)
    for name in ("n_probes", "m", "alpha", "seed", "probes", "similarity", "reference"):
        assert getattr(s, name) == DEFAULTS[name], name
    assert s.impls == [DEFAULTS["impls"]]
    assert list(FOLDER_OPTIONS) == [
        "impls", "one_sided", "probes", "units", "representation", "similarity",
    ]  # fmt: skip
    assert TUNING_OPTIONS == ("n_probes", "m", "alpha", "seed")
    assert set(OPTION_DEFAULTS) == set(FOLDER_OPTIONS) | set(TUNING_OPTIONS)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("m", 0, "compare.m must be an int >= 1, got 0"),
        ("alpha", 1.5, "compare.alpha must be in (0, 1), got 1.5"),
        ("n_probes", 3, "compare.n_probes must be an int >= 5, got 3"),
        ("units", "pairs", "compare.units must be one of ['auto', 'members', 'chains']"),
        ("representation", "layer-x", "compare.representation: unknown representation"),
        ("one_sided", "yes", "compare.one_sided must be true or false, got 'yes'"),
    ],
)
def test_a_bad_value_is_the_same_one_line_from_every_source(key, value, message, capsys):
    from interpeq.compare.cli import main

    with pytest.raises(ValueError) as python:
        compare_zoo("no-such-zoo", **{key: value})
    with pytest.raises(ValueError) as yaml_zoo:
        ExperimentSpec.from_dict({"name": "z", "tasks": ["add_next"], "compare": {key: value}})
    errors = [python, yaml_zoo]
    if key in {f.name for f in fields(CompareSettings)}:  # the studies fix units etc.
        with pytest.raises(ValueError) as yaml_experiment:
            ExperimentConfig.from_dict(
                {"experiment": "toy", "zoo": {"name": "t", "algorithms": ["algorithm_1"]},
                 "compare": {key: value}}
            )  # fmt: skip
        errors.append(yaml_experiment)
    for err in errors:
        assert message in str(err.value) and "\n" not in str(err.value)
    if isinstance(value, bool) or key in ("one_sided", "units"):
        return  # flags and choices: argparse's own line
    assert main(["no-such-zoo", f"--{key.replace('_', '-')}", str(value), "--logger", "none"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1  # before the missing zoo
