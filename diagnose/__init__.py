"""diagnose: what is holding a deep-learning model back, and what to do next.

Importing this package is cheap: nothing heavy (torch, pandas, matplotlib) is imported here. The
public functions are looked up on first use (a module `__getattr__`, as rich does):

    import diagnose
    rep = diagnose.gaps(model, {"train": train_loader, "dev": (x_dev, y_dev)}, human_error=0.01)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_API = {
    "gaps": "diagnose.api",
    "gaps_from_predictions": "diagnose.api",
    "sample_errors": "diagnose.api",
    "tally": "diagnose.api",
    "curves": "diagnose.api",
    "sanity": "diagnose.api",
    "lr_find": "diagnose.api",
    "check_data": "diagnose.api",
    "compare": "diagnose.api",
    "GapReport": "diagnose.core.gaps",
    "Manifest": "diagnose.io.manifest",
    "DiagnoseError": "diagnose.exceptions",
}
__all__ = [
    "DiagnoseError",
    "GapReport",
    "Manifest",
    "__version__",
    "check_data",
    "compare",
    "curves",
    "gaps",
    "gaps_from_predictions",
    "lr_find",
    "sample_errors",
    "sanity",
    "tally",
]

if TYPE_CHECKING:
    from diagnose.api import (
        check_data,
        compare,
        curves,
        gaps,
        gaps_from_predictions,
        lr_find,
        sample_errors,
        sanity,
        tally,
    )
    from diagnose.core.gaps import GapReport
    from diagnose.exceptions import DiagnoseError
    from diagnose.io.manifest import Manifest


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'diagnose' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
