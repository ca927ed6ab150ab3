"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al., "An Empirical Model of
Large-Batch Training", 2018), from gradient norms at two batch sizes.

Appendix A.1 of the paper: with |G_b|^2 the squared norm of a gradient averaged over b examples,
E|G_b|^2 = |G|^2 + tr(Sigma) / b, so two batch sizes b_small < b_big give unbiased estimates

    |G|^2     ~ (b_big |G_big|^2 - b_small |G_small|^2) / (b_big - b_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / b_small - 1 / b_big)

each noisy; both are smoothed over steps (an exponential moving average, as the paper does) before
their ratio is taken. On one device the two sizes are the two halves of a batch and the whole batch:
`half_batch_norms` costs one extra forward and backward pass over the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class BatchNorms:
    """Squared gradient norms at two batch sizes: small_sq at b_small examples (the mean over the
    gradients measured at that size), big_sq at b_big."""

    small_sq: float
    big_sq: float
    b_small: int
    b_big: int


def half_batch_norms(
    model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Any, Any], torch.Tensor], x: Any, y: Any
) -> BatchNorms:
    """The gradients of the two halves of a batch and of the whole: `loss_fn(model, x, y)` returns the
    mean loss over the examples given. The model's `.grad` fields are left as they were."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    n = len(x)
    half = n // 2
    if half < 1:
        raise ValueError(f"x: expected a batch of at least 2 examples, got {n}; pass a bigger batch")
    grads = []
    for part in (slice(0, half), slice(half, 2 * half)):
        loss = loss_fn(model, x[part], y[part])
        g = torch.autograd.grad(loss, params, allow_unused=True)
        grads.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1) for gi, p in zip(g, params, strict=True)]))
    g1, g2 = grads
    small_sq = 0.5 * (float(g1.square().sum()) + float(g2.square().sum()))
    big_sq = float(((g1 + g2) / 2).square().sum())
    return BatchNorms(small_sq, big_sq, half, 2 * half)


@dataclass
class NoiseScale:
    """B_simple smoothed over steps. `update` with each measurement; `value` is tr(Sigma) / |G|^2 of
    the smoothed estimates (None before the first, or while the smoothed |G|^2 is not positive).
    beta: the moving average's weight on the past."""

    beta: float = 0.98
    _g2: float = field(default=0.0, init=False)
    _trace: float = field(default=0.0, init=False)
    _weight: float = field(default=0.0, init=False)
    updates: int = field(default=0, init=False)

    def update(self, norms: BatchNorms) -> None:
        bs, bb = norms.b_small, norms.b_big
        g2 = (bb * norms.big_sq - bs * norms.small_sq) / (bb - bs)
        trace = (norms.small_sq - norms.big_sq) / (1.0 / bs - 1.0 / bb)
        self._g2 = self.beta * self._g2 + (1 - self.beta) * g2
        self._trace = self.beta * self._trace + (1 - self.beta) * trace
        self._weight = self.beta * self._weight + (1 - self.beta)
        self.updates += 1

    @property
    def gradient_sq(self) -> float | None:
        """The smoothed |G|^2 (bias-corrected for the average's start)."""
        return self._g2 / self._weight if self._weight else None

    @property
    def trace(self) -> float | None:
        """The smoothed tr(Sigma), the per-example gradient variance summed over parameters."""
        return self._trace / self._weight if self._weight else None

    @property
    def value(self) -> float | None:
        g2, trace = self.gradient_sq, self.trace
        if g2 is None or trace is None or g2 <= 0:
            return None
        return trace / g2


# Gradient flow: the first layer's RMS gradient over the last one's. A 100x fall or rise across the
# network is the cut-off `diagnose sanity` uses for its gradient_flow check (diagnose/checklist.py).
FLOW_WARN = 1e2
# Batch size against the noise scale: with B_crit ~ B_simple, the paper's trade-off (eq. 2.11 and
# 2.12) gives steps S = S_min (1 + B_simple / B) and examples E = E_min (1 + B / B_simple): at B =
# B_simple / 10 a run takes 11x the fewest steps, at 10 B_simple 11x the fewest examples.
BATCH_FAR = 10.0
# Noise-scale measurements before the batch size is judged (the smoothed estimate needs a few).
MIN_NOISE_UPDATES = 10

GRADIENT_ADVICE = {
    "vanishing_gradients": "the first layers barely learn: look for saturated sigmoid / tanh, dead ReLUs, or a deep "
    "stack without residual connections or normalisation; `diagnose sanity` checks the gradient flow at init",
    "exploding_gradients": "the first layers get far larger gradients than the last: clip gradients, lower the "
    "learning rate, add normalisation, use He / Xavier initialisation",
    "batch_below_noise_scale": "the batch is far below the critical batch size (the gradient noise scale): a larger "
    "batch (or gradient accumulation) would take far fewer steps for the same progress",
    "batch_above_noise_scale": "the batch is far above the critical batch size (the gradient noise scale): a smaller "
    "batch would reach the same loss with far less compute",
}


def layer_gradient_rms(model: torch.nn.Module) -> list[tuple[str, float]]:
    """(module name, RMS of its parameters' gradients) for each module with a weight matrix (ndim >= 2)
    whose gradients are set, in the order the modules are registered."""
    out = []
    for name, m in model.named_modules():
        weight = getattr(m, "weight", None)
        if weight is None or getattr(weight, "ndim", 0) < 2:
            continue
        ps = [p for p in m.parameters(recurse=False) if p.grad is not None]
        if not ps:
            continue
        sq = sum(float(p.grad.double().square().sum()) for p in ps if p.grad is not None)
        numel = sum(p.numel() for p in ps)
        out.append((name or type(m).__name__, (sq / numel) ** 0.5))
    return out


def judge_gradients(
    layers: list[tuple[str, float]], scale: NoiseScale | None, batch_size: int | None
) -> list[tuple[str, str, str]]:
    """(id, severity, evidence) of the gradient findings that hold on the last measurement."""
    found = []
    if len(layers) >= 2:
        (first, g0), (last, g1) = layers[0], layers[-1]
        ratio = g0 / g1 if g1 > 0 else float("inf")
        where = f"RMS gradient {first} {g0:.3g}, {last} {g1:.3g}: first/last ratio {ratio:.3g} over {len(layers)} layers"
        if ratio <= 1 / FLOW_WARN:
            found.append(("vanishing_gradients", "warn", where))
        elif ratio >= FLOW_WARN:
            found.append(("exploding_gradients", "warn", where))
    if scale is not None and batch_size and scale.updates >= MIN_NOISE_UPDATES and scale.value is not None:
        b = scale.value
        said = f"batch size {batch_size}, gradient noise scale B_simple {b:.3g} ({scale.updates} measurements)"
        if batch_size * BATCH_FAR <= b:
            found.append(("batch_below_noise_scale", "info", said))
        elif batch_size >= BATCH_FAR * b:
            found.append(("batch_above_noise_scale", "info", said))
    return found
