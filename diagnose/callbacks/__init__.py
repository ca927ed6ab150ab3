"""Findings while a run trains: `Watch` for a hand-written loop, and adapters for Lightning, Hugging Face
and Keras over it. Each writes one JSON-lines event log that `diagnose curves` reads afterwards.

Importing this package imports no training framework: an adapter's framework is imported when the
adapter is first looked up (`from diagnose.callbacks import LightningCallback`).
"""

from __future__ import annotations

import importlib
from typing import Any

from diagnose.callbacks.watch import TrainingStopped, Watch

__all__ = ["HFCallback", "KerasCallback", "LightningCallback", "TrainingStopped", "Watch"]

# adapter -> (its module, what to install when the framework is missing)
_ADAPTERS = {
    "LightningCallback": ("diagnose.callbacks.lightning", "Lightning: pip install 'diagnose[lightning]'"),
    "HFCallback": ("diagnose.callbacks.hf", "Hugging Face transformers: pip install 'diagnose[hf]'"),
    "KerasCallback": ("diagnose.callbacks.keras", "Keras 3: pip install 'diagnose[keras]'"),
}


class MissingFramework(ImportError):
    """An adapter was asked for and its framework is not installed."""


def __getattr__(name: str) -> Any:
    entry = _ADAPTERS.get(name)
    if entry is None:
        raise AttributeError(f"module 'diagnose.callbacks' has no attribute {name!r}")
    module, install = entry
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.startswith("diagnose"):
            raise
        raise MissingFramework(f"{name} needs {install} (no module named {exc.name!r})") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
