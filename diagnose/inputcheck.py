"""Is the model fed what it was trained on? Two checks of the preprocessing trap.

1. Without a training log: a batch-norm layer keeps the running mean and variance of its inputs over
   training (`running_mean`, `running_var`). Fed a sample of the train split, the first such layer
   should see inputs with about those statistics; a model trained on normalized images and fed raw
   pixels sees them shifted by many standard deviations, with a far smaller variance. Where the model
   has no batch norm with running statistics (or cannot be hooked, as TorchScript), this cannot be
   known, and nothing is said.
2. With a training log (`--log run.csv`): the log's last validation accuracy (or loss) should match
   what diagnose measures on the split the log validated on; see `log_disagreement`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from diagnose.core.stats import newcombe_interval

# Median over channels, in running standard deviations: a healthy model measured on its own train
# split sits near 0.0-0.1 (augmentation and the running average's lag); raw pixels into a model
# trained on normalized ones measured 0.6 with a variance 8x smaller.
SHIFT_LIMIT = 0.5
VARIANCE_RATIO_LIMIT = 4.0
CAUSES = ("normalization (--mean/--std)", "resizing (--image-size)", "channel order (RGB vs BGR)",
          "eval mode (dropout, batch norm)", "another checkpoint than the one the log belongs to")
# The same, in the words of tensor and table data (no pixels to resize there).
CAUSES_BY_KIND = {
    "images": CAUSES,
    "table": ("standardization (--standardize train, or --mean/--std per column)",
              "the columns, their order and their units", "eval mode (dropout, batch norm)",
              "another checkpoint than the one the log belongs to"),
    "tensor": ("normalization (--standardize train, or --mean/--std per channel)", "the order of the channels",
               "eval mode (dropout, batch norm)", "another checkpoint than the one the log belongs to"),
}


@dataclass(frozen=True)
class InputStats:
    layer: str
    channels: int
    shift: float  # median |mean - running_mean| / running sd
    variance_ratio: float  # median var / running_var (geometric)
    shifts: tuple[float, ...] = ()  # per channel, |mean - running_mean| / running sd

    @property
    def off(self) -> bool:
        return self.shift > SHIFT_LIMIT or not (1 / VARIANCE_RATIO_LIMIT < self.variance_ratio < VARIANCE_RATIO_LIMIT)


def first_norm_stats(module: Any, split: Any, *, device: Any = "cpu", items: int = 512, batch_size: int = 128) -> InputStats | None:
    """What the first batch-norm layer sees on up to `items` items of `split`, against what it saw
    in training. None when it cannot be known (no such layer, no running statistics, a ScriptModule).
    The module runs in eval mode and is given back as it was (diagnose.measuring)."""
    import torch

    if isinstance(module, torch.jit.ScriptModule) or not isinstance(module, torch.nn.Module):
        return None
    layer = None
    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm) and sub.track_running_stats \
                and sub.running_mean is not None and sub.running_var is not None:
            layer = (name, sub)
            break
    if layer is None:
        return None
    name, bn = layer
    seen: list[torch.Tensor] = []

    def grab(_mod: Any, inputs: tuple[Any, ...]) -> None:
        x = inputs[0].detach().float()
        seen.append(x.transpose(0, 1).reshape(x.shape[1], -1).cpu())

    from diagnose.measuring import measuring

    handle = bn.register_forward_pre_hook(grab)
    taken = 0
    try:
        # Eval mode: in training mode the forward pass would move the very running statistics it is
        # compared with (and dropout before the layer would widen what it sees).
        with measuring(module, device):
            for batch in split.batches(batch_size):
                module(batch.x.to(device))
                taken += len(batch.index)
                if taken >= items:
                    break
    except Exception:  # a model that needs other inputs: the evaluation has already said so
        return None
    finally:
        handle.remove()
    if not seen:
        return None
    acts = torch.cat(seen, dim=1)
    if acts.shape[1] < 2:
        return None
    assert bn.running_mean is not None and bn.running_var is not None  # the layer was chosen for having them
    running_var = bn.running_var.detach().float().cpu()
    sd = (running_var + bn.eps).sqrt()
    shifts = (acts.mean(1) - bn.running_mean.detach().float().cpu()).abs() / sd
    ratio = (acts.var(1) + bn.eps) / (running_var + bn.eps)
    return InputStats(layer=name or type(bn).__name__, channels=int(acts.shape[0]), shift=float(shifts.median()),
                      variance_ratio=float(ratio.log().median().exp()), shifts=tuple(float(v) for v in shifts))


def input_statistics_warning(module: Any, split: Any, *, device: Any = "cpu") -> str | None:
    """A one-paragraph warning when the train split is clearly not what the model was trained on; else None."""
    if split is None:
        return None
    stats = first_norm_stats(module, split, device=device)
    if stats is None or not stats.off:
        return None
    head = (
        f"the train split does not look like what the model was trained on: at its first batch-norm layer "
        f"({stats.layer}) the inputs are shifted by {stats.shift:.1f} running standard deviations and their "
        f"variance is x{stats.variance_ratio:.2g} of the training one (median over {stats.channels} channels). "
    )
    settings = "or mean/std in pyproject.toml [tool.diagnose]"
    if getattr(split, "format", "") == "images":
        return head + (
            "A model trained on normalized inputs and fed raw pixels looks like this; every error below is then too "
            f"high. Check normalization (--mean/--std, {settings}), resizing (--image-size) and channel order."
        )
    features = getattr(split, "features", None)
    shape = tuple(getattr(split, "input_shape", ()))
    # The layer sees the inputs themselves (batch norm first): its channels are the data's own.
    direct = bool(shape) and shape[0] == stats.channels
    worst = sorted(range(len(stats.shifts)), key=lambda i: -stats.shifts[i])[:3] if direct else []
    if features is not None:
        named = (" The columns furthest from training: "
                 + ", ".join(f"{features[i]} ({stats.shifts[i]:.1f})" for i in worst) + ".") if worst else ""
        return head + named + (
            " A model trained on standardized columns and fed them in their stored units looks like this; every "
            "error below is then too high. Standardize as in training (--standardize train, or --mean/--std with "
            f"one value per column: {', '.join(features[:6])}{', ...' if len(features) > 6 else ''}; {settings}), "
            "and check that the columns are the ones, in the order and units, the model was trained on."
        )
    where = "channel" if len(shape) >= 2 else "feature"
    named = (f" The {where}s furthest from training: " + ", ".join(f"{i} ({stats.shifts[i]:.1f})" for i in worst)
             + ".") if worst else ""
    return head + named + (
        " A model trained on normalized inputs and fed the stored values looks like this; every error below is "
        f"then too high. Normalize as in training (--standardize train, or --mean/--std with one value per {where}"
        f"{f' ({shape[0]})' if shape else ''}; {settings})."
    )


def log_disagreement(
    *, log_name: str, log_value: float, kind: str, split: str, n: int, errors: int | None,
    loss: tuple[float, float] | None, data_kind: str = "images",
) -> str | None:
    """The log's last validation value against what was measured on `split` (n items).

    kind "accuracy" / "error": compared as error rates; disagreement when the 95% interval of the
    difference (both taken as samples of n items) excludes zero. kind "loss": compared with the mean
    per-item loss measured (mean, sd); disagreement when the difference is beyond 1.96 standard errors
    of two such means and more than 20% of the logged loss. None when they agree or cannot be compared.
    """
    if not math.isfinite(log_value) or n <= 0:
        return None
    if kind in ("accuracy", "error"):
        if errors is None:
            return None
        log_error = 1.0 - log_value if kind == "accuracy" else log_value
        if not 0.0 <= log_error <= 1.0:
            return None
        lo, hi = newcombe_interval(round(log_error * n), n, errors, n)
        if lo <= 0.0 <= hi:
            return None
        measured = f"{errors / n * 100:.1f}% error"
        logged = f"{log_name} {log_value:.4g} ({log_error * 100:.1f}% error)"
        gap = f"{(errors / n - log_error) * 100:+.1f} pts, 95% CI {lo * 100:+.1f} to {hi * 100:+.1f}"
    elif kind == "loss":
        if loss is None or not all(math.isfinite(v) for v in loss):
            return None
        mean, sd = loss
        se = math.sqrt(2.0) * sd / math.sqrt(n)
        diff = mean - log_value
        if abs(diff) <= 1.96 * se or abs(diff) <= 0.2 * abs(log_value):
            return None
        measured = f"mean loss {mean:.4g}"
        logged = f"{log_name} {log_value:.4g}"
        gap = f"{diff:+.4g}"
    else:
        return None
    return (
        f"the training log's last {logged} disagrees with {split} measured here ({measured}; {gap}). "
        f"The model is not being fed what it was validated on; likely causes: "
        f"{', '.join(CAUSES_BY_KIND.get(data_kind, CAUSES))}."
    )


def last_validation(path: Any) -> tuple[str, float, str] | None:
    """(logged name, last finite value, 'accuracy' | 'loss') of a training log's validation metric,
    accuracy first; None when the log has neither."""
    import numpy as np

    from diagnose.io.logs import parse_log

    log = parse_log(path)
    for name, kind in (("val_acc", "accuracy"), ("val_loss", "loss")):
        series = log.series.get(name)
        if series is None:
            continue
        values = np.asarray(series.value, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            return series.source or name, float(finite[-1]), kind
    return None


def check_log(path: Any, report: Any, *, split: str = "train_dev", data_kind: str = "images") -> str | None:
    """The warning of `log_disagreement` for a GapReport (its saved predictions give the loss), or None.
    data_kind: "images", "tensor" or "table", the words its likely causes are given in.

    Raises UsageError when `split` was not measured or the log has no validation metric."""
    import numpy as np

    from diagnose.exceptions import UsageError

    found = last_validation(path)
    if found is None:
        raise UsageError(f"--log {path}: expected a validation accuracy or loss in the log, got neither; "
                         "pass the log of the run that produced MODEL")
    result = report.splits.get(split)
    if result is None:
        raise UsageError(f"--log-split {split}: expected a split that was measured ({', '.join(report.splits)}), "
                         f"got {split}; pass the split the log validated on")
    name, value, kind = found
    loss = None
    if kind == "loss" and getattr(report, "predictions", None):
        from pathlib import Path

        from diagnose.io.predictions import prediction_files, read_predictions

        files = prediction_files(Path(report.predictions))
        if split in files:
            per_item = read_predictions(files[split], ["label", "pred", "loss"]).get("loss")
            if per_item is not None:
                v = np.asarray(per_item, dtype=np.float64)
                v = v[np.isfinite(v)]
                if v.size > 1:
                    loss = (float(v.mean()), float(v.std(ddof=1)))
    return log_disagreement(log_name=name, log_value=value, kind=kind, split=split, n=result.n,
                            errors=result.errors, loss=loss, data_kind=data_kind)
