"""``interpeq compare --models models.yaml``: compare any set of small transformers.

A manifest names each model, its group (the interpretation it is meant to implement)
and its circuit, and the probes they are all read on; the comparison is the zoo
comparison's (the same test, options, files, figures and W&B run), in
``<root>/<name>/equivalence`` or ``--out``::

    name: my_models            # a plain name: it names the output folder
    probes: {task: add_index}  # a task's inputs, or {file: probes.safetensors}
    models:
      - id: ours-s0            # a zoo member: its model and circuit as trained
        zoo: seeds_check
        member: add_index-D-s0
      - id: theirs
        transformer_lens: exports/add_index-s0   # a TransformerLens checkpoint folder
        circuit: [L0H0, L1H1]  # the components that implement the interpretation
        group: add_index       # default: the member's task (zoo members only)

Paths are relative to the manifest's folder. Probe files hold one integer tensor
``tokens [n, seq_len]`` (``.safetensors``, or ``.pt`` read with ``weights_only=True``);
``n_probes`` rows are used. Pretrained language models (Hugging Face or TransformerLens)
are compared on IOI by ``interpeq reproduce ioi`` with their own list of models
(docs/lm.md). The manifest is read with ``yaml.safe_load`` and never runs code; every
bad entry is one line naming the model and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import yaml

from interpeq.compare.options import CompareOptions
from interpeq.compare.result import CompareResult
from interpeq.equivalence.units import ModelUnit, check_vocab

TOP_KEYS = {"name", "probes", "models"}
MODEL_KEYS = {"id", "group", "zoo", "member", "transformer_lens", "circuit"}


@dataclass(frozen=True)
class Manifest:
    name: str
    probes: dict[str, Any]
    units: list[ModelUnit]
    base: Path


def read_manifest(path: str | Path, root: str | Path) -> Manifest:
    """The manifest at ``path`` with every model loaded (zoo members under ``root``)."""
    from interpeq.zoo.spec import check_zoo_name

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: not a readable YAML manifest ({err})") from None
    if not isinstance(data, dict) or set(data) - TOP_KEYS or not data.get("models"):
        raise ValueError(
            f"{path}: a manifest is a mapping with 'name', 'probes' and a list of 'models' "
            f"(keys {sorted(TOP_KEYS)}); see docs/your-models.md"
        )
    name = check_zoo_name(data.get("name") or path.stem)
    probes = data.get("probes") or {}
    if not isinstance(probes, dict) or len(set(probes) & {"task", "file"}) != 1:
        raise ValueError(
            f"{path}: probes must be {{task: <name>}} or {{file: <path>}}, got {probes!r}"
        )
    units = [_unit(entry, k, path.parent, root) for k, entry in enumerate(data["models"])]
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: model ids must be unique, got {ids}")
    return Manifest(name, probes, units, path.parent)


def _unit(entry: Any, k: int, base: Path, root: str | Path) -> ModelUnit:
    """One manifest entry -> a unit (its model, its circuit, its group)."""
    where = f"models[{k}]"
    if not isinstance(entry, dict) or set(entry) - MODEL_KEYS:
        raise ValueError(f"{where}: an entry is a mapping with keys from {sorted(MODEL_KEYS)}")
    uid = str(entry.get("id") or entry.get("member") or where)
    if ("zoo" in entry) == ("transformer_lens" in entry):
        raise ValueError(f"{where} ({uid}): give either 'zoo' + 'member' or 'transformer_lens'")
    if "zoo" in entry:
        return _zoo_member(entry, uid, root)
    from interpeq.models.transformer_lens import load_transformer_lens

    if not entry.get("circuit") or not entry.get("group"):
        raise ValueError(
            f"{where} ({uid}): a TransformerLens model needs 'circuit' (e.g. [L0H1, MLP1]) "
            "and 'group' (the interpretation it implements)"
        )
    model = load_transformer_lens(base / str(entry["transformer_lens"]))
    circuit = _circuit(entry["circuit"], model, uid)
    return ModelUnit(uid, str(entry["group"]), [model], [circuit], [str(entry["group"])], {})


def _zoo_member(entry: dict, uid: str, root: str | Path) -> ModelUnit:
    from interpeq.zoo.store import load_zoo

    zoo = load_zoo(entry["zoo"], root)
    member = zoo[str(entry.get("member"))]  # a ValueError naming the members there
    circuit = entry.get("circuit")
    corr = _circuit(circuit, member.model, uid) if circuit else member.correspondence
    group = str(entry.get("group") or member.task_name)
    meta = {"zoo": zoo.name, "member": member.id}
    return ModelUnit(uid, group, [member.model], [corr], [member.task_name], meta)


def _circuit(names: Any, model: Any, uid: str) -> list:
    from interpeq.models import Component

    if not isinstance(names, list):
        raise ValueError(f"{uid}: circuit must be a list of components such as [L0H1, MLP1]")
    try:
        comps = [Component.parse(str(c)) for c in names]
        model.check_components(comps)
    except ValueError as err:
        raise ValueError(f"{uid}: circuit {names}: {err}") from None
    return comps


def manifest_tokens(m: Manifest, options: CompareOptions) -> torch.Tensor:
    """``[n_probes, seq_len]`` probe tokens: a task's inputs or the rows of a file."""
    from interpeq.compare.units import probe_tokens

    if "task" in m.probes:
        task = str(m.probes["task"])
        return probe_tokens([task], options.n_probes, options.seed, task)
    path = m.base / str(m.probes["file"])
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tokens = load_file(str(path))["tokens"]
        else:
            tokens = torch.load(path, map_location="cpu", weights_only=True)
            tokens = tokens["tokens"] if isinstance(tokens, dict) else tokens
    except Exception as err:  # missing, truncated or tampered: one line
        raise ValueError(
            f"{path}: not a readable probe file ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.is_floating_point():
        raise ValueError(f"{path}: probes must be an integer tensor 'tokens' [n, seq_len]")
    if tokens.shape[0] < options.n_probes:
        raise ValueError(
            f"{path}: {tokens.shape[0]} probe rows, fewer than n_probes={options.n_probes}"
        )
    return tokens[: options.n_probes].long()


def compare_models(
    manifest: str | Path,
    options: CompareOptions | None = None,
    *,
    root: str | Path = "checkpoints",
    out_dir: str | Path | None = None,
    logger: Any = None,
    progress: bool = True,
) -> CompareResult:
    """Run the pairwise test over the manifest's models (module doc); the same files and
    decisions as :func:`interpeq.compare.compare_zoo`."""
    from interpeq.compare.log import log_compare
    from interpeq.compare.run import _add_reference, _compute, _layout, _result, _test
    from interpeq.devices import resolve_device
    from interpeq.equivalence.pairwise import OWN_DRAWS

    options = options or CompareOptions()
    m = read_manifest(manifest, root)
    tokens = manifest_tokens(m, options)
    check_vocab([(u.id, model) for u in m.units for model in u.models], tokens)
    drawn = 0 if options.impls == "training" else options.m
    dev = resolve_device("auto")
    computed = _compute(m.units, tokens, drawn, options.seed, None, progress,
                        options.impls in OWN_DRAWS, dev, options.representation)  # fmt: skip
    pairs, cols = _layout(len(computed), 0, False)
    test = dict(alpha=options.alpha, seed=options.seed, one_sided=options.one_sided,
                impls=options.impls, progress=progress)  # fmt: skip
    results = _test(computed, pairs, None, dev, options.similarity, test)
    if options.reference:
        reading = {"representation": options.representation, "method": options.similarity}
        _add_reference(m.units, computed, pairs, results, tokens.to(dev), options.m,
                       options.seed, progress, reading)  # fmt: skip
    settings = {"zoo": m.name, "against": None, "manifest": str(manifest)}
    settings |= {k: v for k, v in options.kwargs().items() if k != "include_unconverged"}
    settings["units"] = "members"
    out = Path(out_dir) if out_dir else Path(root) / m.name / "equivalence"
    result = _result(SimpleNamespace(name=m.name), None, computed, (pairs, cols, len(computed)),
                     results, settings, out)  # fmt: skip
    if logger:
        log_compare(logger, result)
    return result
