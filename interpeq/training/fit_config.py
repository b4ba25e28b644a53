"""``interpeq fit`` speaks the zoo YAML's vocabulary: ``task``, ``model``, ``train``,
``correspondence`` (and Lightning's ``trainer``).

Lightning's CLI builds :class:`~interpeq.training.siit.SIITModule` from a ``model:``
group holding its arguments (``model.task``, ``model.model``, ``model.siit``,
``model.correspondence``). Users write the groups the zoo YAML uses instead, so a
member's ``model`` / ``train`` sections copy between ``interpeq zoo`` and ``interpeq
fit``; :func:`to_lightning_args` rewrites config files and dotted flags into the CLI's
layout before it parses them, and :func:`user_key` names a key in the user's words in
an error. Files in the CLI's layout keep loading, with one line saying what was renamed.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from interpeq.models import HookedTransformerConfig

#: the zoo vocabulary's group -> SIITModule's argument (LightningCLI: ``model.<argument>``)
GROUPS = {"task": "task", "model": "model", "train": "siit", "correspondence": "correspondence"}
TO_GROUP = {arg: group for group, arg in GROUPS.items()}
ARCH_KEYS = frozenset(HookedTransformerConfig.__dataclass_fields__)


def _is_lightning_layout(data: Mapping[str, Any]) -> bool:
    model = data.get("model")
    return isinstance(model, Mapping) and any(k in model for k in GROUPS.values())


def to_lightning(data: Any, where: str) -> tuple[Any, list[str]]:
    """A fit config in the zoo vocabulary -> the CLI's layout, and the legacy keys it held.

    ``where`` names the file in errors."""
    if not isinstance(data, Mapping):
        return data, []
    if _is_lightning_layout(data):
        legacy = [f"model.{arg}" for group, arg in GROUPS.items() if arg in data["model"]]
        return dict(data), legacy
    out = {k: v for k, v in data.items() if k not in GROUPS}
    module = {arg: data[group] for group, arg in GROUPS.items() if group in data}
    if isinstance(module.get("model"), Mapping):
        unknown = sorted(set(module["model"]) - ARCH_KEYS)
        if unknown:
            raise ValueError(
                f"{where}: model: unknown key(s) {unknown}; valid: {sorted(ARCH_KEYS)} "
                "(training keys go under train:)"
            )
    if module:
        out["model"] = module
    return out, []


def _flag(arg: str) -> str:
    """``--train.lr`` -> ``--model.siit.lr``, ``--task`` -> ``--model.task``,
    ``--model.d_model`` -> ``--model.model.d_model``; other flags as given."""
    if not arg.startswith("--"):
        return arg
    name, eq, value = arg[2:].partition("=")
    head, _, rest = name.partition(".")
    if head == "model" and rest.split(".")[0] in ARCH_KEYS:
        name = f"model.model.{rest}"
    elif head in GROUPS and head != "model":
        name = f"model.{GROUPS[head]}" + (f".{rest}" if rest else "")
    return f"--{name}{eq}{value}"


def to_lightning_args(argv: list[str], workdir: Path | None = None) -> list[str]:
    """``argv`` with every ``--config`` file and dotted flag in the CLI's layout.

    Translated files are written to ``workdir`` (a fresh temporary folder by default);
    a file in the CLI's layout is passed as is, and one line on stderr says which keys
    it used and their names now."""
    out: list[str] = []
    folders = [workdir] if workdir else []

    def folder() -> Path:  # one temporary folder for this command line, made when needed
        if not folders:
            folders.append(Path(tempfile.mkdtemp(prefix="interpeq_fit_")))
        return folders[0]

    args = iter(argv)
    for arg in args:
        if arg == "--config" or arg.startswith("--config="):
            path = arg.partition("=")[2] if "=" in arg else next(args, None)
            out += ["--config", _translated(path, folder, len(out))] if path is not None else [arg]
        else:
            out.append(_flag(arg))
    return out


def _translated(path: str, folder, position: int) -> str:
    file = Path(path)
    if not file.is_file():
        return path  # the CLI reports the missing file
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    converted, legacy = to_lightning(data, path)
    if legacy:
        now = ", ".join(f"{k} is now {user_key(k)}" for k in legacy)
        print(f"interpeq fit: note: {path}: {now} (the zoo YAML's groups)", file=sys.stderr)
        return path
    if converted == data:
        return path
    target = folder() / f"{position}_{file.name}"  # position: same-named files stay apart
    target.write_text(yaml.safe_dump(converted, sort_keys=False))
    return str(target)


def user_key(key: str | None) -> str | None:
    """A CLI key in the zoo vocabulary: ``model.siit.lr`` -> ``train.lr``."""
    if not key or not key.startswith("model."):
        return key
    arg, _, rest = key[len("model.") :].partition(".")
    group = TO_GROUP.get(arg)
    if group is None:
        return key
    return f"{group}.{rest}" if rest else group


_CLI_NAMES = re.compile(r"\bmodel\.(siit|model|task|correspondence)\b")


def user_text(message: str) -> str:
    """A CLI message with its keys in the zoo vocabulary (``--model.siit.lrr`` ->
    ``--train.lrr``), so no error names a key the user never wrote."""
    return _CLI_NAMES.sub(lambda m: TO_GROUP[m.group(1)], message)
