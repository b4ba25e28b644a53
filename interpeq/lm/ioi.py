"""Indirect-object identification (IOI) prompts, seeded, the same for every model compared.

A prompt introduces two names and repeats one of them (the subject ``S``); the answer
is the other (the indirect object ``IO``), e.g. "When Mary and John went to the store,
John gave a drink to" -> " Mary". Each base template comes in two orders: **ABBA**
(``IO`` first: "Mary and John ... John") and **BABA** (``S`` first: "John and Mary ...
John"). Names, places and objects are our own lists.

**Corruptions** (the corrupted prompt has the same words except at name slots, so with
one-token names it has the same token length and alignment as the clean one):

* ``"s2_io"`` (default; the paper's code, ``gen_flipped_prompts(("S2", "IO"))``): the
  repeated subject ``S2`` is replaced by the IO name, so the repeated name -- the
  signal the circuit uses -- now points at the other person;
* ``"swap"``: IO and S exchanged everywhere (the corrupted answer is S);
* ``"third_name"``: ``S2`` replaced by a third name ``C``: no name is repeated.

**One-token names.** A name is kept only if ``" " + name`` is one token, and not the
unknown token, for *every* tokenizer of the comparison, so all models see the same
prompts and answers are single tokens. Prompts are drawn from the full name list in
seeded order and those with a dropped name are skipped (counted) until ``n`` are kept,
so the prompts for a seed are deterministic given the set of tokenizers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

NAMES = (
    "Mary", "John", "Alice", "Bob", "Sarah", "James", "Emma", "David", "Laura", "Michael",
    "Anna", "Paul", "Kate", "Mark", "Lisa", "Peter", "Rachel", "Tom", "Grace", "Daniel",
    "Helen", "George", "Julia", "Steven", "Amy", "Kevin", "Susan", "Frank", "Diana", "Eric",
    "Linda", "Jack", "Claire", "Adam", "Nancy", "Henry", "Rose", "Victor", "Ellen", "Carl",
)  # fmt: skip
PLACES = (
    "store", "garden", "park", "school", "restaurant", "hospital", "station", "office",
    "library", "market", "beach", "museum", "house", "river", "cafe",
)  # fmt: skip
OBJECTS = (
    "drink", "book", "ring", "ball", "kiss", "letter", "bone", "snack", "necklace",
    "basket", "computer", "pen", "bag", "flower", "key",
)  # fmt: skip
# {A} {B}: the two first mentions (ABBA: A = IO, B = S; BABA: A = S, B = IO); {S2}: the repeat
TEMPLATES = (
    "When {A} and {B} went to the {place}, {S2} gave a {object} to",
    "Then, {A} and {B} went to the {place}. {S2} gave a {object} to",
    "After {A} and {B} arrived at the {place}, {S2} handed a {object} to",
    "While {A} and {B} were at the {place}, {S2} gave a {object} to",
    "Afterwards, {A} and {B} went to the {place}. {S2} brought a {object} to",
    "Friends {A} and {B} found a {object} at the {place}. {S2} gave it to",
)
ORDERS = ("ABBA", "BABA")
CORRUPTIONS = ("s2_io", "swap", "third_name")


@dataclass
class IOIPrompts:
    """Clean and corrupted prompts (same rows), their names, and what was dropped."""

    clean: list[str]
    corrupt: list[str]
    io: list[str]
    s: list[str]
    corrupt_other: list[str]  # the name that entered the corrupted prompt at S2 (swap: S)
    template: list[int]
    order: list[str]
    corruption: str
    seed: int
    names: list[str]
    dropped_names: list[str] = field(default_factory=list)
    n_dropped_prompts: int = 0

    def __len__(self) -> int:
        return len(self.clean)

    @property
    def n_dropped_names(self) -> int:
        return len(self.dropped_names)

    def summary(self) -> str:
        return (
            f"IOI: {len(self)} prompts ({self.corruption} corruption, seed {self.seed}); "
            f"dropped {self.n_dropped_names} of {len(self.names)} names that are not one token "
            f"for every model and {self.n_dropped_prompts} prompts that used them"
        )

    def to_dataset(self):
        """A ``datasets.Dataset``, one row per prompt (answer = the IO name)."""
        from datasets import Dataset

        return Dataset.from_dict(
            {
                "clean": self.clean,
                "corrupt": self.corrupt,
                "answer": [" " + n for n in self.io],
                "io": self.io,
                "s": self.s,
                "corrupt_other": self.corrupt_other,
                "template": self.template,
                "order": self.order,
            }
        )


def to_dataset(prompts: IOIPrompts):
    """See :meth:`IOIPrompts.to_dataset`."""
    return prompts.to_dataset()


def one_token(tokenizer, name: str) -> bool:
    """Is ``" " + name`` exactly one known token (not the unknown token)?"""
    ids = tokenizer.encode(" " + name, add_special_tokens=False)
    unk = getattr(tokenizer, "unk_token_id", None)
    return len(ids) == 1 and (unk is None or ids[0] != unk)


def split_names(names: Sequence[str], tokenizers: Sequence) -> tuple[list[str], list[str]]:
    """``(kept, dropped)``: kept names are one token for every tokenizer."""
    kept = [n for n in names if all(one_token(t, n) for t in tokenizers)]
    return kept, [n for n in names if n not in kept]


def _fill(template: str, order: str, io: str, s: str, s2: str, place: str, obj: str) -> str:
    a, b = (io, s) if order == "ABBA" else (s, io)
    return template.format(A=a, B=b, S2=s2, place=place, object=obj)


def _corrupt(kind: str, io: str, s: str, c: str) -> tuple[str, str, str]:
    """``(io, s, s2)`` names of the corrupted prompt."""
    if kind == "s2_io":
        return io, s, io
    if kind == "swap":
        return s, io, io
    return io, s, c


def ioi_prompts(
    n: int,
    seed: int = 0,
    tokenizers: Sequence = (),
    *,
    corruption: str = "s2_io",
    names: Sequence[str] = NAMES,
    templates: Sequence[str] = TEMPLATES,
    places: Sequence[str] = PLACES,
    objects: Sequence[str] = OBJECTS,
    max_tries: int = 100,
) -> IOIPrompts:
    """``n`` seeded IOI prompts, mixed templates and orders (see the module doc)."""
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; choose one of {list(CORRUPTIONS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    kept, dropped = split_names(list(names), tokenizers)
    if len(kept) < 3:
        raise ValueError(
            f"only {len(kept)} of {len(names)} names are one token for every model "
            f"(dropped: {dropped}); IOI needs at least 3"
        )
    rng = random.Random(seed)
    bad = set(dropped)
    out = IOIPrompts([], [], [], [], [], [], [], corruption, seed, list(names), dropped)
    for _ in range(n * max_tries):
        if len(out) == n:
            break
        io, s, c = rng.sample(list(names), 3)
        t = rng.randrange(len(templates))
        order = ORDERS[rng.randrange(2)]
        place, obj = rng.choice(list(places)), rng.choice(list(objects))
        if {io, s} & bad or (corruption == "third_name" and c in bad):
            out.n_dropped_prompts += 1
            continue
        k_io, k_s, k_s2 = _corrupt(corruption, io, s, c)
        out.clean.append(_fill(templates[t], order, io, s, s, place, obj))
        out.corrupt.append(_fill(templates[t], order, k_io, k_s, k_s2, place, obj))
        out.io.append(io)
        out.s.append(s)
        out.corrupt_other.append({"s2_io": io, "swap": s, "third_name": c}[corruption])
        out.template.append(t)
        out.order.append(order)
    if len(out) < n:
        raise ValueError(f"could not draw {n} IOI prompts with one-token names")
    return out


@dataclass
class IOIBatch:
    """One tokenizer's view of the prompts: right-padded ids, the shared mask, answers."""

    clean: Tensor  # [n, T]
    corrupt: Tensor  # [n, T]
    mask: Tensor  # [n, T]
    io_ids: Tensor  # [n] the correct answer token
    s_ids: Tensor  # [n] the subject token (the logit-difference foil)


def _encode(tokenizer, texts: Sequence[str], bos: int | None) -> list[list[int]]:
    rows = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    return [([bos] if bos is not None else []) + r for r in rows]


def tokenize(prompts: IOIPrompts, tokenizer, *, prepend_bos: bool = True) -> IOIBatch:
    """Tokenise clean and corrupted prompts with one model's tokenizer.

    ``prepend_bos`` puts the tokenizer's BOS token first (as TransformerLens, the
    paper's code, does). Each corrupted prompt must have its clean prompt's length --
    true for one-token names -- so patching aligns position by position.
    """
    bos = tokenizer.bos_token_id if prepend_bos else None
    clean, corrupt = (
        _encode(tokenizer, prompts.clean, bos),
        _encode(tokenizer, prompts.corrupt, bos),
    )
    for i, (a, b) in enumerate(zip(clean, corrupt, strict=True)):
        if len(a) != len(b):
            raise ValueError(
                f"prompt {i}: clean and corrupted prompts tokenise to different lengths"
            )
    pad = tokenizer.pad_token_id
    pad = pad if pad is not None else (tokenizer.eos_token_id or 0)
    width = max(len(r) for r in clean)
    ids = torch.full((2, len(clean), width), pad, dtype=torch.long)
    mask = torch.zeros(len(clean), width, dtype=torch.long)
    for i, (a, b) in enumerate(zip(clean, corrupt, strict=True)):
        ids[0, i, : len(a)] = torch.tensor(a)
        ids[1, i, : len(b)] = torch.tensor(b)
        mask[i, : len(a)] = 1
    answer = [tokenizer.encode(" " + n, add_special_tokens=False)[0] for n in prompts.io]
    foil = [tokenizer.encode(" " + n, add_special_tokens=False)[0] for n in prompts.s]
    return IOIBatch(ids[0], ids[1], mask, torch.tensor(answer), torch.tensor(foil))
