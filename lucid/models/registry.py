"""Model registry: ``register_model``, ``create_model``, ``list_models`` (timm's names and habits)."""
from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
import typing

_MODELS: dict = {}


def register_model(fn):
    """Decorator: make a model-building function available to ``create_model`` under its own name."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of registered models, optionally filtered by a shell-style pattern ("inception*")."""
    names = sorted(_MODELS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def is_model(name: str) -> bool:
    return name in _MODELS


def create_model(name: str, pretrained_path: str | None = None, **kwargs):
    """Build the registered model ``name`` with keyword overrides; load weights from ``pretrained_path``.

    Keyword arguments override the variant's own, architecture included, as timm's do:
    ``create_model("inception_next_tiny", depths=[2, 2, 6, 2], dims=[48, 96, 192, 384])`` keeps tiny's token
    mixer with those stages. A misspelled argument is a TypeError that lists the accepted ones.

    ``pretrained_path`` is a lucid weights file (safetensors; e.g. written by scripts/convert_timm.py). Its
    classifier must match ``num_classes``; a mismatch is an error naming the keys and shapes.
    """
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Known models: {', '.join(list_models())}")
    try:
        model = _MODELS[name](**kwargs)
    except TypeError as exc:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if not bad or bad.group(1) not in kwargs:  # a TypeError from inside the model, not the caller's typo
            raise
        known = _argument_names(_MODELS[name])
        close = difflib.get_close_matches(bad.group(1), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"create_model({name!r}): unknown argument {bad.group(1)!r}.{hint} "
                        f"{name} takes: {', '.join(known)}") from None
    if pretrained_path is not None:
        from ..serialization import load

        state = load(pretrained_path)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]  # a trainer checkpoint
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise RuntimeError(f"weights in {pretrained_path} do not fit {name}: {exc}") from None
    return model


def _argument_names(fn) -> list[str]:
    """The keyword arguments of the class a registered builder returns (from its return annotation)."""
    try:
        cls = typing.get_type_hints(fn).get("return")
        return [p.name for p in inspect.signature(cls).parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError, NameError):
        return []
