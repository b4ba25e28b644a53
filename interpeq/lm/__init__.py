"""Pretrained language models (GPT-2, Pythia) through ``transformers``, and the IOI study.

Needs the ``lm`` extra (``pip install 'interpeq[lm]'``). ``interpeq reproduce ioi`` runs
the study (:mod:`interpeq.lm.study`); ``docs/lm.md`` describes it.
"""

from interpeq.lm.adapters import LMAdapter
from interpeq.lm.circuits import (
    GPT2_IOI_CIRCUIT,
    HeadImportance,
    co_implementations,
    compare_with_reference,
    head_importance,
    select_circuit,
)
from interpeq.lm.ioi import IOIBatch, IOIPrompts, ioi_prompts, to_dataset, tokenize
from interpeq.lm.loading import load_pretrained, load_tokenizer, resolve_device
from interpeq.lm.tl_adapter import TLAdapter

__all__ = [
    "GPT2_IOI_CIRCUIT",
    "HeadImportance",
    "IOIBatch",
    "IOIPrompts",
    "LMAdapter",
    "TLAdapter",
    "co_implementations",
    "compare_with_reference",
    "head_importance",
    "ioi_prompts",
    "load_pretrained",
    "load_tokenizer",
    "resolve_device",
    "select_circuit",
    "to_dataset",
    "tokenize",
]
