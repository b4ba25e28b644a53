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
      - id: lm
        huggingface: models/tiny-gpt2   # a Hugging Face causal LM: folder or hub name
        circuit: [L0H1, L1H0]  # heads; its co-implementations resample the other heads
        group: add_index

Paths are relative to the manifest's folder. Probe files hold one integer tensor
``tokens [n, seq_len]`` (``.safetensors``, or ``.pt`` read with ``weights_only=True``);
``n_probes`` rows are used; every model must read them (their ids below its vocabulary).
What is read: a small transformer's residual states averaged over content positions (as in
a zoo comparison, ``--representation``); a Hugging Face model's residual states at the
last position through :class:`interpeq.lm.LMAdapter` (``lm`` extra), its
co-implementations the non-circuit heads patched from other probe rows
(:func:`interpeq.lm.circuits.co_implementations`). IOI prompts for language models:
``interpeq reproduce ioi`` (docs/lm.md). The manifest is read with ``yaml.safe_load`` and never runs code; every
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
MODEL_KEYS = {"id", "group", "zoo", "member", "transformer_lens", "huggingface", "circuit"}
SOURCES = ("zoo", "transformer_lens", "huggingface")


@dataclass(frozen=True)
class Manifest:
    name: str
    probes: dict[str, Any]
    units: list  # ModelUnit (small transformers) or LMEntry (Hugging Face LMs), in order
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


def _unit(entry: Any, k: int, base: Path, root: str | Path) -> ModelUnit | LMEntry:
    """One manifest entry -> a unit (its model, its circuit, its group)."""
    where = f"models[{k}]"
    if not isinstance(entry, dict) or set(entry) - MODEL_KEYS:
        raise ValueError(f"{where}: an entry is a mapping with keys from {sorted(MODEL_KEYS)}")
    uid = str(entry.get("id") or entry.get("member") or where)
    if sum(k in entry for k in SOURCES) != 1:
        raise ValueError(
            f"{where} ({uid}): give one of 'zoo' + 'member', 'transformer_lens' or 'huggingface'"
        )
    if "zoo" in entry:
        return _zoo_member(entry, uid, root)
    if not entry.get("circuit") or not entry.get("group"):
        raise ValueError(
            f"{where} ({uid}): a model outside a zoo needs 'circuit' (e.g. [L0H1, MLP1]) "
            "and 'group' (the interpretation it implements)"
        )
    if "huggingface" in entry:
        return _huggingface(entry, uid, base)
    from interpeq.models.transformer_lens import load_transformer_lens

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


@dataclass(frozen=True)
class LMEntry:
    """A Hugging Face causal LM of a manifest, read through :class:`interpeq.lm.LMAdapter`."""

    id: str
    group: str
    adapter: Any
    circuit: list


def _huggingface(entry: dict, uid: str, base: Path) -> LMEntry:
    from interpeq.lm import LMAdapter
    from interpeq.lm.loading import load_pretrained
    from interpeq.models import AttnHead

    source = str(entry["huggingface"])
    local = base / source
    model, _ = load_pretrained(str(local) if local.is_dir() else source)
    adapter = LMAdapter(model, None, name=uid)
    circuit = _circuit(entry["circuit"], adapter, uid, check=adapter.check)
    if not all(isinstance(c, AttnHead) for c in circuit):
        raise ValueError(f"{uid}: a language model's circuit lists heads (e.g. [L0H1, L1H0])")
    return LMEntry(uid, str(entry["group"]), adapter, circuit)


def _circuit(names: Any, model: Any, uid: str, check: Any = None) -> list:
    from interpeq.models import Component

    if not isinstance(names, list):
        raise ValueError(f"{uid}: circuit must be a list of components such as [L0H1, MLP1]")
    try:
        comps = [Component.parse(str(c)) for c in names]
        (check or model.check_components)(comps)
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
    from interpeq.compare.run import compute_units, test_units, write_result
    from interpeq.devices import resolve_device
    from interpeq.equivalence.pairwise import OWN_DRAWS

    options = options or CompareOptions()
    m = read_manifest(manifest, root)
    tokens = manifest_tokens(m, options)
    small = [u for u in m.units if isinstance(u, ModelUnit)]
    check_vocab([(u.id, model) for u in small for model in u.models], tokens)
    drawn = 0 if options.impls == "training" else options.m
    dev = resolve_device("auto")
    done = compute_units(small, tokens, drawn, options.seed, None, progress,
                         options.impls in OWN_DRAWS, dev, options.representation)  # fmt: skip
    by_id = {u.id: u for u in done}
    computed = [by_id.get(u.id) or _lm_unit(u, tokens, drawn, options.seed) for u in m.units]
    if options.reference and len(small) != len(m.units):
        raise ValueError("--reference needs every model to be a small transformer")
    pairs, cols, results = test_units(
        computed, (len(computed), 0, False), options.kwargs(), name=f"manifest {m.name!r}",
        ray=None, dev=dev, progress=progress, reference=(m.units, tokens),
    )  # fmt: skip
    settings = {"zoo": m.name, "against": None, "manifest": str(manifest)}
    settings |= {k: v for k, v in options.kwargs().items() if k != "include_unconverged"}
    settings["units"] = "members"
    out = Path(out_dir) if out_dir else Path(root) / m.name / "equivalence"
    return write_result(computed, (pairs, cols, len(computed)), results, settings, out, logger)


def _lm_unit(entry: LMEntry, tokens: torch.Tensor, m: int, seed: int):
    """A language model's unit on the probes: last-position residual states, and ``m``
    variants with its non-circuit heads patched from other probe rows (a seeded
    permutation of the rows as the source)."""

    from interpeq.equivalence.units import Unit
    from interpeq.lm.circuits import co_implementations
    from interpeq.seeds import generator

    vocab = int(entry.adapter.model.config.vocab_size)
    if int(tokens.max()) >= vocab:
        raise ValueError(
            f"{entry.id}: probe ids reach {int(tokens.max())}, its vocabulary is {vocab}"
        )
    mask = torch.ones_like(tokens)
    reprs = entry.adapter.representations(tokens, mask)
    if not m:
        return Unit(entry.id, entry.group, reprs.cpu(), reprs.new_zeros(0, *reprs.shape), {})
    perm = torch.randperm(tokens.shape[0], generator=generator(seed, "manifest", entry.id))
    batch = SimpleNamespace(clean=tokens, corrupt=tokens[perm], mask=mask)
    impls = co_implementations(entry.adapter, batch, entry.circuit, m, seed)
    return Unit(entry.id, entry.group, reprs.cpu(), impls.cpu(), {"source": "huggingface"})
