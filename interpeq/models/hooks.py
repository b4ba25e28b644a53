"""Hook points: named identity modules where activations can be read or replaced.

A ``HookPoint`` is an ``nn.Module`` whose forward is the identity, so PyTorch's own
forward-hook machinery does the work. With no hook registered, the cost is one
module call. Hook functions follow TransformerLens: ``fn(activation, hook)`` returns
a replacement tensor or ``None`` (keep the activation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.module import _global_forward_hooks

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]
NamesFilter = None | str | Sequence[str] | Callable[[str], bool]


class HookPoint(nn.Module):
    """Identity module carrying a TransformerLens hook name (set by the owning model)."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str = ""

    @property
    def active(self) -> bool:
        """Whether any forward hook is registered (lets the model skip optional work)."""
        return bool(self._forward_hooks)

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        def wrapped(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            return fn(output, self)

        return self.register_forward_hook(wrapped)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # Fast path: with no hook registered (here or globally) skip nn.Module's call
        # machinery entirely, so unused hook points cost one attribute check.
        if not (self._forward_hooks or _global_forward_hooks):
            return x
        return super().__call__(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class HookedRootModule(nn.Module):
    """Base class giving a module name-addressed hooks, caching and hook contexts."""

    def setup_hooks(self) -> None:
        """Name every HookPoint after its module path; call at the end of ``__init__``."""
        self.hook_dict: dict[str, HookPoint] = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_dict[name] = module

    @property
    def hook_names(self) -> list[str]:
        return list(self.hook_dict)

    def resolve_names(self, names_filter: NamesFilter) -> list[str]:
        """Hook names selected by a filter (None = all); unknown names are a ValueError."""
        if names_filter is None:
            return self.hook_names
        if callable(names_filter):
            return [n for n in self.hook_dict if names_filter(n)]
        names = [names_filter] if isinstance(names_filter, str) else list(names_filter)
        unknown = [n for n in names if n not in self.hook_dict]
        if unknown:
            raise ValueError(f"unknown hook name(s) {unknown}; valid names: {self.hook_names}")
        return names

    @contextlib.contextmanager
    def hooks(
        self, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]] = ()
    ) -> Iterator[None]:
        """Register hooks for the duration of a ``with`` block, removing them on exit.

        Each entry is ``(name_or_filter, fn)``; a callable filter hooks every matching name.
        """
        handles = []
        try:
            for name, fn in fwd_hooks:
                for resolved in self.resolve_names(name):
                    handles.append(self.hook_dict[resolved].add_hook(fn))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def run_with_hooks(
        self, *args, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]] = (), **kwargs
    ) -> torch.Tensor:
        with self.hooks(fwd_hooks):
            return self(*args, **kwargs)

    def run_with_cache(
        self, *args, names_filter: NamesFilter = None, detach: bool = True, **kwargs
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run forward and return ``(output, cache)``; only the selected hooks are cached.

        ``detach=False`` keeps the graph (for losses on cached activations).
        """
        cache: dict[str, torch.Tensor] = {}

        def save(act: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = act.detach() if detach else act

        names = self.resolve_names(names_filter)
        with self.hooks([(name, save) for name in names]):
            out = self(*args, **kwargs)
        return out, cache
