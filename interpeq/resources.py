"""Configs that ship with the package (``configs/`` in the repository).

The repository's top-level ``configs/`` folder is installed as the package data
``interpeq.configs`` (a setuptools package-directory mapping), so the demo and the
``reproduce`` experiments find their YAML files through ``importlib.resources`` on an
editable install, a wheel, or any working directory — never through ``__file__``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def config_path(*parts: str) -> Path:
    """The packaged config ``configs/<parts...>`` as a filesystem path (it may not exist:
    callers check, so that the error names what is missing)."""
    return Path(str(files("interpeq.configs").joinpath(*parts)))
