"""Tiny random GPT-2 and GPT-NeoX models with a word-level tokenizer built here (no hub)."""

import os
import re

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
transformers = pytest.importorskip("transformers", reason="pip install 'interpeq[lm]'")

from interpeq.lm import LMAdapter  # noqa: E402
from interpeq.lm.ioi import NAMES, OBJECTS, PLACES, TEMPLATES  # noqa: E402

SPECIAL = ["<|endoftext|>", "[UNK]"]
MULTI_TOKEN = ["Anne-Marie", "Jean-Luc"]  # split at "-" by the pre-tokenizer: 3 tokens


def words(drop=()):
    text = " ".join([*TEMPLATES, *PLACES, *OBJECTS, *NAMES, *MULTI_TOKEN])
    text = re.sub(r"\{\w+\}", " ", text)
    seen = dict.fromkeys(re.findall(r"\w+|[^\w\s]+", text))
    return [w for w in seen if w not in drop]


def make_tokenizer(drop=()):
    """A WordLevel vocabulary of the IOI words; " Mary" -> ["Mary"] (whitespace dropped)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate([*SPECIAL, *words(drop)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="[UNK]",
    )


def gpt2(vocab_size, seed=0, n_layer=2):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(
        n_layer=n_layer, n_head=4, n_embd=32, vocab_size=vocab_size, n_positions=64,
        initializer_range=0.2,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return transformers.GPT2LMHeadModel(cfg).eval()


def neox(vocab_size, seed=0, n_layer=2):
    torch.manual_seed(seed)
    cfg = transformers.GPTNeoXConfig(
        num_hidden_layers=n_layer, num_attention_heads=4, hidden_size=32, intermediate_size=64,
        vocab_size=vocab_size, max_position_embeddings=64, bos_token_id=0, eos_token_id=0,
        initializer_range=0.2,
    )  # fmt: skip
    return transformers.GPTNeoXForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="session", params=["gpt2", "neox"])
def adapter(request, tokenizer):
    build = gpt2 if request.param == "gpt2" else neox
    return LMAdapter(build(len(tokenizer)), tokenizer, name=f"tiny-{request.param}", device="cpu")


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory, tokenizer):
    """Two tiny models of each family saved with save_pretrained (model + tokenizer)."""
    root = tmp_path_factory.mktemp("models")
    paths = {}
    for name, build, seed, layers in [  # neox_b is deeper: the units differ in width
        ("gpt2_a", gpt2, 0, 2), ("gpt2_b", gpt2, 1, 2),
        ("neox_a", neox, 2, 2), ("neox_b", neox, 3, 3),
    ]:  # fmt: skip
        path = root / name
        build(len(tokenizer), seed, layers).save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths[name] = path
    return paths
