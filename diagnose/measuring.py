"""Running a caller's module to measure it, without changing it: the one guarded way in.

Every path that forwards a model to measure it (gaps, the input-statistics check, the probes of
`sanity` and `lr-find`) goes through `measuring`: every submodule in eval mode (dropout off, batch
norm on its running statistics, which it then leaves alone), under `torch.inference_mode()`, and
afterwards each submodule's own `training` flag and the module's device put back as they were. A
model left in `.train()` by its training loop, or one with batch norm frozen in eval inside a
train-mode model, comes back exactly as it was given: parameters and buffers untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def _single_device(module: torch.nn.Module) -> torch.device | None:
    """The one device every parameter and buffer is on; None when there are none or several."""
    devices = {t.device for t in module.parameters()} | {t.device for t in module.buffers()}
    return devices.pop() if len(devices) == 1 else None


@contextlib.contextmanager
def measuring(module: Any, device: torch.device | str | None = None) -> Iterator[Any]:
    """Evaluate `module` inside the block: eval mode, inference mode, on `device` when given.

    On leaving, every submodule's `training` flag is restored to its own value (not just the top
    module's), and a module moved to `device` goes back to where it was (parameters keep their
    identity, so an optimizer holding them still works). Anything that is not an nn.Module is
    yielded as it is, under inference mode.
    """
    if not isinstance(module, torch.nn.Module):
        with torch.inference_mode():
            yield module
        return
    modes = [(m, m.training) for m in module.modules()]
    home = _single_device(module)
    target = torch.device(device) if device is not None else None
    moved = target is not None and home is not None and home != target
    try:
        # Moved outside inference mode: parameters made there could never be trained again.
        if moved:
            module.to(target)
        # The flag is set directly, not through .train(False): exported programs refuse .eval(), and a
        # train() override (one that keeps batch norm frozen) must not decide what is restored.
        for m, _ in modes:
            m.training = False
        with torch.inference_mode():
            yield module
    finally:
        for m, mode in modes:
            m.training = mode
        if moved:
            module.to(home)
