"""``compare_zoo``: pairwise congruity over a zoo's units (or across two zoos).

Writes into ``<root>/<zoo>/equivalence/`` (``.../equivalence/against-<other>/`` with
``against``) the files of :mod:`interpeq.compare.files`. Options that change *what* is
compared (:data:`FOLDER_OPTIONS`: ``impls``, ``one_sided``, ``probes``, ``units``,
``representation``, ``similarity``) name a subfolder when not at their defaults, so
comparisons of different kinds keep their own files: ``--impls training`` ->
``equivalence/impls-training/``, ``--one-sided
--probes uniform`` -> ``equivalence/one-sided-probes-uniform/`` (names in a fixed order,
see :func:`options_folder`; ``against-<other>/`` below that). The test's numbers
(``n_probes``, ``m``, ``alpha``, ``seed``) do not: ``interpeq compare`` refuses to
replace a comparison made with other numbers unless ``--overwrite``. Units and probes:
:mod:`interpeq.compare.units`; the test itself: :mod:`interpeq.equivalence.pairwise`;
the block-distributed path (``launcher="ray"``): :mod:`interpeq.compare.distributed`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from interpeq.compare.distributed import (
    check_workers,
    compute_units_blocks,
    pairwise_congruity_blocks,
)
from interpeq.compare.files import congruity_matrix, results_payload, write_files
from interpeq.compare.log import log_compare
from interpeq.compare.options import FOLDER_OPTIONS, CompareOptions
from interpeq.compare.result import CompareResult, summarize
from interpeq.compare.units import member_units, probe_tokens, sort_units
from interpeq.console import bars_disabled
from interpeq.devices import resolve_device
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M
from interpeq.equivalence.pairwise import (
    OWN_DRAWS,
    group_pairs,
    pairwise_congruity,
)
from interpeq.equivalence.units import ModelUnit, Unit, check_vocab, compute_unit
from interpeq.tasks.names import parse_stage, path_safe
from interpeq.zoo.store import DEFAULT_ROOT, load_zoo


def compare_zoo(
    zoo: Any,
    against: Any = None,
    *,
    n_probes: int = 256,
    m: int = DEFAULT_M,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    probes: str = "mixture",
    units: str = "auto",
    one_sided: bool = False,
    impls: str = "auto",
    out_dir: str | Path | None = None,
    root: str | Path = DEFAULT_ROOT,
    logger: Any = None,
    progress: bool = True,
    workers: int = 1,
    launcher: str = "local",
    address: str | None = None,
    include_unconverged: bool = False,
    device: str = "auto",
    reference: bool = False,
    representation: str = "residual",
    similarity: str = "ridge",
) -> CompareResult:
    """Pairwise congruity within ``zoo`` (or between ``zoo`` and ``against``); writes
    the three files (see the module doc) and logs them to ``logger`` if given.

    ``launcher="ray"`` computes the units' representations and the pairwise work in
    blocks over ``workers`` Ray workers (a local Ray, or the cluster at ``address``);
    the files are the same (:mod:`interpeq.compare.distributed`).

    ``reference=True`` also computes the paper code's statistic per pair
    (:mod:`interpeq.equivalence.reference`: circuit-patched copies, the fraction of
    them farther from the other model; ``reference_fraction`` in every pair and group
    pair), beside the test.

    ``device="auto"``: representations, co-implementations and the ridge engine on the
    GPU where there is one (results come back to host memory).

    ``representation`` (:data:`interpeq.equivalence.REPRESENTATIONS`: what is read from
    each model) and ``similarity`` (``ridge``, ``paper``, ``cka``, ``cka_debiased``) apply
    to the pair, its co-implementations and the reference statistic alike.

    Members flagged ``converged: false`` (or chains with such a stage) are left out,
    with a warning naming them, unless ``include_unconverged``: a model that did not
    learn its task has no interpretation to compare."""
    opts = dict(
        n_probes=n_probes, m=m, alpha=alpha, seed=seed, impls=impls, one_sided=one_sided,
        probes=probes, units=units, representation=representation, similarity=similarity,
        reference=reference, include_unconverged=include_unconverged,
    )  # fmt: skip
    _check_options(workers, launcher, address, opts)
    za = load_zoo(zoo, root)
    zb = load_zoo(against, root) if against is not None else None
    rows_u, cols_u = _zoo_units(za, zb, units, include_unconverged)
    every = rows_u + cols_u
    tokens = probe_tokens([u.input_task for u in every], n_probes, seed, probes)
    check_vocab([(u.id, model) for u in every for model in u.models], tokens)
    ray = {"workers": workers, "address": address} if launcher == "ray" else None
    dev, drawn = resolve_device(device), 0 if impls == "training" else m
    own = impls in OWN_DRAWS
    computed = compute_units(every, tokens, drawn, seed, ray, progress, own, dev, representation)
    shape = (len(rows_u), len(cols_u), zb is not None)
    pairs, col_index, results = test_units(
        computed, shape, opts, name=f"zoo {za.name!r}", ray=ray, dev=dev, progress=progress,
        reference=(every, tokens),
    )  # fmt: skip
    settings = {"zoo": za.name, "against": zb.name if zb is not None else None}
    settings |= {k: v for k, v in opts.items() if k != "include_unconverged"}
    settings["units"] = "chains" if any(len(u.models) > 1 for u in every) else "members"
    out = output_dir(za, zb, out_dir, {k: opts[k] for k in FOLDER_OPTIONS})
    layout = (pairs, col_index, len(rows_u))
    return write_result(computed, layout, results, settings, out, logger)


def test_units(
    computed: list, shape: tuple[int, int, bool], options: dict[str, Any], *, name: str,
    ray: dict | None, dev: Any, progress: bool, reference: tuple[list, Any] | None = None,
) -> tuple[list[tuple[int, int]], list[int], list[dict]]:  # fmt: skip
    """The test step every comparison shares (zoos and manifests): lay out the pairs of
    ``shape = (n_rows, n_cols, across)`` (all pairs within the rows; the rectangle across
    two sets), test each, and with ``options["reference"]`` add the paper code's
    statistic from ``reference = (units, probe tokens)``. Returns the pairs, the unit
    index of each matrix column and one result row per pair."""
    pairs, col_index = _layout(*shape)
    if not pairs:
        raise ValueError(f"{name} has a single unit: nothing to compare")
    test = {k: options[k] for k in ("alpha", "seed", "one_sided", "impls")}
    results = _test(
        computed, pairs, ray, dev, options["similarity"], {**test, "progress": progress}
    )
    if options["reference"]:
        units, tokens = reference
        reading = {"representation": options["representation"], "method": options["similarity"]}
        _add_reference(units, computed, pairs, results, tokens.to(dev), options["m"],
                       options["seed"], progress, reading)  # fmt: skip
    return pairs, col_index, results


def write_result(computed, layout, results, settings: dict, out: Path, logger: Any = None):
    """Summarise, group and write a comparison (module doc), log it to ``logger``, and
    return it: the step every comparison shares after :func:`test_units`."""
    result = _result(computed, layout, results, settings, out)
    if logger:
        log_compare(logger, result)
    return result


def load_zoo_with_tasks(zoo: Any, root: Any, task_files: Sequence[str], command: str):
    """Load the ``task_files`` (a user's ``@register``-ed tasks), then the zoo; one line
    when the zoo was trained with a task file that is not passed, or has changed since."""
    from interpeq.tasks.user import load_task_files
    from interpeq.zoo.store import ZooStore

    load_task_files(task_files)
    za = load_zoo(zoo, root)
    ZooStore(za.path.parent, za.path.name).check_task_files(command)
    return za


def _check_options(workers, launcher, address, options: dict[str, Any]) -> None:
    """Every option of :func:`compare_zoo` that can be wrong, before any model is read
    (the comparison's own through :class:`~interpeq.compare.options.CompareOptions`)."""
    check_workers(workers, launcher)
    if launcher == "local" and (workers > 1 or address):
        raise ValueError("--workers > 1 and --address need --launcher ray")
    CompareOptions(**options)
    if options["similarity"] != "ridge" and launcher == "ray":
        raise ValueError(
            f"--similarity {options['similarity']} runs on the local launcher only: the Ray "
            "blocks share one ridge engine per block; drop --launcher ray or use --similarity ridge"
        )


def _test(computed, pairs, ray, dev, similarity: str, test: dict[str, Any]) -> list[dict]:
    """The pairwise test on ``pairs``: in this process (the ridge engine on ``dev``
    where that is a GPU) or in blocks over Ray workers."""
    if similarity != "ridge":
        test["method"] = similarity
    if dev.type == "cuda" and not ray:  # the ridge engine on the GPU too (CPU: as before)
        test["device"] = dev
    if ray:
        return pairwise_congruity_blocks(computed, pairs, launcher="ray", **ray, **test)
    return pairwise_congruity(computed, pairs, **test)


def _result(computed, layout, results, settings, out: Path) -> CompareResult:
    """Summarise, group and write the comparison (see the module doc)."""
    pairs, col_index, n_rows = layout
    impls, seed = settings["impls"], settings["seed"]
    name, against = settings["zoo"], settings["against"]
    groups = group_pairs(results, ordered=against is not None, seed=seed)
    summary = summarize(results, computed, settings)
    summary["null_spread"] = (
        _narrow_nulls(computed, pairs, results, impls)
        if against is None and impls in OWN_DRAWS
        else []
    )
    symmetric = against is None
    matrix = congruity_matrix(pairs, results, n_rows, col_index, symmetric=symmetric)
    pvalues = congruity_matrix(
        pairs, results, n_rows, col_index, symmetric=symmetric, key="p_value"
    )
    files = write_files(
        out,
        computed,
        col_index,
        matrix,
        results_payload(summary, computed, results, groups),
        title=f"congruity in zoo {name}" + (f" vs {against}" if against is not None else ""),
        row_label=name,
        col_label=against if against is not None else name,
        pvalues=pvalues,
        alpha=settings["alpha"],
    )
    row_ids = [computed[i].id for i in range(n_rows)]
    col_ids = [computed[i].id for i in col_index]
    return CompareResult(out, files, results, groups, summary, row_ids, col_ids, matrix)


def _zoo_units(
    za: Any, zb: Any, kind: str, include_unconverged: bool
) -> tuple[list[ModelUnit], list[ModelUnit]]:
    """Row units and (with ``--against``) column units, ids of the latter prefixed."""
    rows = sort_units(member_units(_usable(za, include_unconverged), kind))
    if zb is None:
        return rows, []
    cols = sort_units(member_units(_usable(zb, include_unconverged), kind))
    for u in cols:
        u.id = f"{zb.name}/{u.id}"
    return rows, cols


def _usable(zoo: Any, include_unconverged: bool) -> list:
    """The members to compare: without those flagged ``converged: false`` (and, for
    chains, without every stage of a chain that has one), unless asked to keep them."""
    members = list(zoo)
    bad = [m for m in members if not m.converged]
    if include_unconverged or not bad:
        return members

    def chain(m: Any) -> str:
        return f"{(parse_stage(m.task_name) or (m.task_name,))[0]}|{m.setting}|{m.seed}"

    broken = {chain(m) for m in bad}
    keep = [
        m for m in members if m not in bad and not (parse_stage(m.task_name) and chain(m) in broken)
    ]
    if not keep:
        raise ValueError(
            f"every member of zoo {zoo.name!r} missed its thresholds (converged: false): "
            "retrain them (a zoo YAML's retry: section), or compare them anyway with "
            "--include-unconverged (include_unconverged=True)"
        )
    warnings.warn(
        f"zoo {zoo.name!r}: leaving out {len(members) - len(keep)} member(s) that did not "
        f"converge or belong to a chain with one ({', '.join(m.id for m in bad[:5])}"
        f"{' ...' if len(bad) > 5 else ''}); --include-unconverged keeps them",
        RuntimeWarning,
        stacklevel=3,
    )
    return keep


def _add_reference(
    every: list, computed: list, pairs: list, results: list, tokens: Any, m: int, seed: int,
    progress: bool, reading: dict[str, str],
) -> None:  # fmt: skip
    """The reference construction's fraction, added to each pair's row (in place)."""
    from interpeq.equivalence.reference import circuit_draws, reference_fraction

    draws = [
        circuit_draws(u, tokens, m, seed + 1000, reading["representation"])
        for u in tqdm(
            every, desc="circuit-patched copies", disable=bars_disabled(progress), unit="model"
        )
    ]
    method = reading["method"]
    for (i, j), row in zip(pairs, results, strict=True):
        if not row.get("identical"):
            a, b = computed[i], computed[j]
            row.update(reference_fraction(a, b, draws[i], draws[j], seed=seed, method=method))


def _narrow_nulls(
    units: list, pairs: list, results: list, impls: str = "intervention"
) -> list[dict[str, Any]]:
    """The null diagnostic per group (:func:`interpeq.equivalence.groups.null_spread`)
    from the similarities already computed. With the raw draws (``impls="intervention"``)
    a warning names the groups whose draws sit nearer than retraining, where that test
    rejects equivalent members; with the calibrated null (``"auto"``) a warning names
    the groups too small to calibrate."""
    from interpeq.equivalence.groups import null_spread
    from interpeq.equivalence.nulls import MIN_MEMBERS

    sims = {pair: r["similarity"] for pair, r in zip(pairs, results, strict=True)}
    spread = [g.to_dict() for g in null_spread(units, sims)]
    if impls == "intervention":
        bad = [g for g in spread if g["narrow"]]
        if bad:
            warnings.warn(
                "uncalibrated null narrower than retraining in "
                + ", ".join(f"{g['group']} (draws {g['ratio']:.2f} x)" for g in bad)
                + ": the pairwise test rejects equivalent members there; drop --impls "
                "intervention for the calibrated null (docs/calibration.md)",
                RuntimeWarning,
                stacklevel=3,
            )
    small = [g for g in spread if g["n_members"] < MIN_MEMBERS]
    if impls == "auto" and small:
        warnings.warn(
            "no calibrated null in "
            + ", ".join(f"{g['group']} ({g['n_members']} member(s))" for g in small)
            + f": a group needs {MIN_MEMBERS} members; their pairs are decided through the "
            "other side's null only, and undecidable where neither side has one",
            RuntimeWarning,
            stacklevel=3,
        )
    return spread


def compute_units(
    units: Sequence[ModelUnit],
    tokens: Any,
    m: int,
    seed: int,
    ray: dict[str, Any] | None,
    progress: bool,
    self_too: bool,
    device: Any,
    representation: str = "residual",
) -> list[Unit]:
    """Each unit's representations on ``tokens`` and ``m`` seeded co-implementations
    (with their distances to the unit when ``self_too``): in this process on ``device``,
    or in blocks over Ray workers. The first step of every comparison."""
    if ray:
        return compute_units_blocks(
            units, tokens, m, seed, **ray, progress=progress, self_distances_too=self_too,
            representation=representation,
        )  # fmt: skip
    tokens = tokens.to(device)
    out = []
    for u in tqdm(units, desc="representations", disable=bars_disabled(progress), unit="model"):
        for model in u.models:
            model.to(device)
        out.append(compute_unit(u, tokens, m, seed, representation))
    return out


def _layout(n_rows: int, n_cols: int, across: bool) -> tuple[list[tuple[int, int]], list[int]]:
    """The pairs (all ``i < j`` within one zoo; the full rectangle across two) and the
    unit index of each matrix column."""
    if not across:
        return [(i, j) for i in range(n_rows) for j in range(i + 1, n_rows)], list(range(n_rows))
    pairs = [(i, n_rows + j) for i in range(n_rows) for j in range(n_cols)]
    return pairs, list(range(n_rows, n_rows + n_cols))


# option -> default; a non-default value names the output subfolder (options_folder)
def options_folder(options: dict[str, Any]) -> str:
    """The subfolder of ``equivalence/`` for these options ("" for the defaults): the
    non-default :data:`FOLDER_OPTIONS` in the order of that table, a flag as its name
    (``one-sided``), any other value as ``<name>-<value>`` (``impls-training``)."""
    parts = []
    for key, default in FOLDER_OPTIONS.items():
        value = options.get(key, default)
        if value == default:
            continue
        flag = key.replace("_", "-")
        parts.append(flag if value is True else f"{flag}-{path_safe(str(value))}")
    return "-".join(parts)


def output_dir(za: Any, zb: Any, out_dir: str | Path | None, options: dict[str, Any]) -> Path:
    """Where a comparison writes: ``out_dir`` if given, else ``<zoo>/equivalence/``
    [``/<options_folder>``][``/against-<other>``]."""
    if out_dir:
        return Path(out_dir)
    out = za.path / "equivalence"
    name = options_folder(options)
    out = out / name if name else out
    return out / f"against-{zb.name}" if zb is not None else out
