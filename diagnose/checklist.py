"""Model health checks (`diagnose sanity`): the pre-training checklist run on a real torch model.

Each `check_*` takes an nn.Module and tensors and returns a `core.checks.Check`. The model given is
never changed: checks that train or perturb weights work on a deep copy.

Tasks: multi-class logits (N, C) with int64 labels; binary as one logit (N,) / (N, 1) with 0/1
labels; regression with float labels (mean squared error).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from diagnose.core.checks import Check, Status, most_severe

# --- thresholds -----------------------------------------------------------------------------------
# init_loss: a fresh classifier should score about ln(C) (Karpathy, "A Recipe for Training Neural
# Networks", 2019: "verify loss @ init"). Above 1.5x the logits start far from uniform; above 3x the
# softmax is saturated. Below 0.8x a "fresh" model already knows the labels. Our cut-offs.
INIT_LOSS_WARN = (0.8, 1.5)
INIT_LOSS_FAIL_HIGH = 3.0
# overfit_batch: "near-zero" loss on the batch (and every item right). Regression: the mean squared
# error under 1% of the batch's label variance (R^2 > 0.99).
OVERFIT_LOSS = 0.01
OVERFIT_LR = 3e-3  # 3x Adam's default (Kingma & Ba 2015): a fresh sigmoid MLP fits 16 digits in ~210 steps
# gradcheck: relative error |a - n| / max(|a|, |n|) as CS231n's notes grade it: above 1e-2 the
# gradient is probably wrong, 1e-4..1e-2 is uncomfortable. Gradients smaller than GRAD_FLOOR are
# compared on an absolute scale, since float64 central differences carry ~1e-10 of rounding noise.
GRADCHECK_FAIL = 1e-2
GRADCHECK_WARN = 1e-4
GRAD_FLOOR = 1e-5
FD_STEPS = (1e-5, 1e-6)  # a coordinate fails only if it fails at both steps (a ReLU kink passes at one)
# activations: "as much as 40% of your network can be dead" with too high a learning rate (CS231n
# notes, "Neural Networks Part 1") - that is a fail. A warning from a quarter of a layer on: an untouched PyTorch-
# default MLP on non-negative inputs already has 10-15% never-positive units (measured: 4 of 32 on the
# bundled digits before training, 6 of 32 after), so a lower bar would flag most ordinary models.
# Saturation is counted as the usual activation histograms count it (Glorot & Bengio, "Understanding
# the difficulty of training deep feedforward neural networks", AISTATS 2010, figures 2-4, and
# CS231n's tanh histograms): the share of ALL a layer's outputs within 1% of a bound, where a
# sigmoid's slope is under 0.01 (4% of its peak) and a tanh's under 0.04. Per unit "saturated on 90%
# of items" missed a layer with 60% of its outputs pinned. Fresh PyTorch-default sigmoid / tanh MLPs
# on standardised digits put under 1% of outputs there (measured); 5% is a clear departure, so it
# warns. From 25% a quarter of the layer passes almost no gradient - the "saturated from the start"
# regime of Glorot & Bengio's figure 2 - so it fails.
DEAD_WARN, DEAD_FAIL = 0.25, 0.40
SATURATED_WARN, SATURATED_FAIL = 0.05, 0.25
SATURATION_MARGIN = 0.01
# init_scale: weight std against the references for the layer's fan-in / fan-out: He sqrt(2/fan_in)
# (He et al. 2015), Xavier sqrt(2/(fan_in + fan_out)) (Glorot & Bengio 2010), and PyTorch's default
# kaiming_uniform(a=sqrt(5)), std 1/sqrt(3 fan_in). Within the references is fine; 2x outside warns,
# 10x outside fails. Our cut-offs.
SCALE_WARN, SCALE_FAIL = 2.0, 10.0
# gradient_flow: ratio of the first to the last layer's RMS gradient. A 100x fall or rise across the
# network warns, 1000x fails. Our cut-offs.
FLOW_WARN, FLOW_FAIL = 1e2, 1e3

CHECK_IDS: tuple[str, ...] = (
    "init_loss", "overfit_batch", "gradcheck", "activations", "init_scale", "gradient_flow", "input_stats",
)
RELU_FAMILY = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish)
SQUASHING = (nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.Hardtanh)
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


# --- shared helpers -------------------------------------------------------------------------------


def infer_task(out: torch.Tensor, y: np.ndarray) -> str:
    """'multiclass' for (N, C >= 2) logits and integer labels, 'binary' for one logit, else 'regression'."""
    integer = np.issubdtype(np.asarray(y).dtype, np.integer)
    if integer and out.ndim == 2 and out.shape[1] >= 2:
        return "multiclass"
    if integer and (out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)):
        return "binary"
    return "regression"


def _target(y: np.ndarray, task: str, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y), device=device)
    return t.long() if task == "multiclass" else t.float()


def compute_loss(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Mean cross-entropy (multiclass), binary cross-entropy on the logit, or mean squared error."""
    if task == "multiclass":
        return nn.functional.cross_entropy(out, y)
    if task == "binary":
        flat = out.reshape(-1)
        return nn.functional.binary_cross_entropy_with_logits(flat, y.to(flat.dtype))
    if out.ndim == 2 and out.shape[1] == 1:
        out = out.reshape(-1)
    return nn.functional.mse_loss(out, y.to(out.dtype).reshape(out.shape))


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model(x) as logits: a tensor, the first of a tuple, or a dict's 'logits' (as `diagnose gaps` reads them)."""
    from diagnose.evaluate import extract_logits

    return extract_logits(model(x), len(x))


def _correct(out: torch.Tensor, y: torch.Tensor, task: str) -> int:
    if task == "multiclass":
        return int((out.argmax(dim=1) == y).sum())
    if task == "binary":
        return int(((out.reshape(-1) > 0).long() == y.long()).sum())
    return 0


def _no_dropout(model: nn.Module) -> None:
    """Training mode, except dropout: the overfit and gradient checks ask whether the model can fit."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()


def reinitialise(model: nn.Module) -> nn.Module | None:
    """A deep copy with every submodule's reset_parameters() called; None when no submodule has one."""
    if isinstance(model, torch.jit.ScriptModule):
        return None
    fresh = copy.deepcopy(model)
    found = False
    for m in fresh.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
            found = True
    return fresh if found else None


def copy_model(model: nn.Module) -> nn.Module:
    """An independent copy; TorchScript through a save / load round trip (deepcopy leaves non-leaf weights)."""
    if isinstance(model, torch.jit.ScriptModule):
        import io

        buf = io.BytesIO()
        torch.jit.save(model, buf)
        buf.seek(0)
        return torch.jit.load(buf, map_location=next(iter(model.parameters()), torch.empty(0)).device)
    with warnings.catch_warnings():
        # Copying a torch.export graph module trips torch's own pytree deprecation notice (torch 2.13).
        warnings.simplefilter("ignore", FutureWarning)
        return copy.deepcopy(model)


def _skip_untrainable(check_id: str, fmt: str | None, exc: BaseException) -> Check:
    what = {"export": "a torch.export program", "torchscript": "this TorchScript module"}.get(fmt or "", "this model")
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return Check(
        check_id,
        "skip",
        f"Cannot backpropagate through {what} ({detail}).",
        "Run the check on the eager model: save its state_dict and pass --arch, or pass --arch alone to check the design.",
        {"format": fmt, "error": detail},
    )


# --- the checks -----------------------------------------------------------------------------------


@torch.no_grad()
def check_init_loss(fresh: nn.Module | None, batches: Iterable[tuple[torch.Tensor, np.ndarray]], *, source: str = "") -> Check:
    """Mean loss of freshly initialised weights over a few batches against ln(C)."""
    if fresh is None:
        return Check(
            "init_loss",
            "skip",
            "No fresh weights: this format cannot be re-initialised (no reset_parameters).",
            "Pass --arch (and --arch-kwargs) so a freshly built model can be checked.",
        )
    fresh.eval()
    total, n, task, c = 0.0, 0, "", 0
    for x, y in batches:
        out = _logits(fresh, x)
        task = infer_task(out, y)
        if task == "regression":
            return Check("init_loss", "skip", "Regression model: the loss at initialization has no ln(C) reference.")
        c = out.shape[1] if task == "multiclass" else 2
        total += float(compute_loss(out, _target(y, task, out.device), task)) * len(y)
        n += len(y)
    loss = total / max(n, 1)
    ref = math.log(c)
    ratio = loss / ref
    details = {"loss": loss, "ln_c": ref, "classes": c, "ratio": ratio, "items": n, "fresh_weights": source}
    evidence = f"Loss of fresh weights ({source}) on {n:,} train items is {loss:.3f}; ln({c}) = {ref:.3f} (ratio {ratio:.2f})."
    status: Status = "pass"
    advice = ""
    if not math.isfinite(loss):
        status, advice = "fail", "The loss is not finite at initialization: look for log(0), a division by zero or inf inputs."
    elif ratio > INIT_LOSS_FAIL_HIGH:
        status = "fail"
    elif ratio > INIT_LOSS_WARN[1] or ratio < INIT_LOSS_WARN[0]:
        status = "warn"
    if status != "pass" and not advice:
        advice = (
            "A fresh classifier should be unsure of every class. Too high: the final layer's weights are too large "
            "(scale them down or zero them), the init is too wide for the depth, or the model ends in softmax / "
            "sigmoid and the loss applies it again. Too low: the weights are not fresh, or the inputs leak the label."
        )
    return Check("init_loss", status, evidence, advice, details)


def check_overfit_batch(
    model: nn.Module, x: torch.Tensor, y: np.ndarray, *, steps: int = 500, lr: float = OVERFIT_LR, fmt: str | None = None,
    start: str = "",
) -> Check:
    """Train a copy on one batch with Adam: it must reach near-zero loss and every item right.

    `start` says which weights it starts from: fresh ones prove the design and the pipeline can learn;
    trained ones start near a low loss and prove little (run_checks passes fresh ones when it has them)."""
    try:
        work = copy_model(model)
    except Exception as exc:  # noqa: BLE001 - some compiled modules refuse to copy
        return _skip_untrainable("overfit_batch", fmt, exc)
    params = [p for p in work.parameters() if p.requires_grad]
    if not params:
        return Check("overfit_batch", "skip", "The model has no trainable parameters.", "Load the model in a trainable format (--arch with a state_dict).")
    _no_dropout(work)
    history: list[float] = []
    reached = None
    try:
        opt = torch.optim.Adam(params, lr=lr)
        with torch.enable_grad():
            out = _logits(work, x)
            task = infer_task(out, y)
            t = _target(y, task, out.device)
            scale = float(t.float().var()) if task == "regression" and len(t) > 1 else 1.0
            for step in range(steps + 1):
                if step:
                    out = _logits(work, x)
                loss = compute_loss(out, t, task)
                value = float(loss.detach())
                history.append(value)
                ok = value <= OVERFIT_LOSS * max(scale, 1e-12)
                if task != "regression":
                    ok = ok and _correct(out, t, task) == len(t)
                if ok or not math.isfinite(value):
                    if ok:
                        reached = step
                    break
                if step == steps:
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        return _skip_untrainable("overfit_batch", fmt, exc)
    with torch.no_grad():
        acc = _correct(out, t, task) / len(t) if task != "regression" else float("nan")
    final = history[-1]
    details = {
        "items": len(t),
        "steps": steps,
        "lr": lr,
        "reached_at_step": reached,
        "initial_loss": history[0],
        "final_loss": final,
        "accuracy": acc,
        "loss_curve": history[:: max(1, len(history) // 20)],
        "start": start or "the weights given",
    }
    since = f" from {start}" if start else ""
    acc_text = f", accuracy {acc * 100:.0f}%" if task != "regression" else ""
    if reached is not None:
        return Check(
            "overfit_batch",
            "pass",
            f"Fit one batch of {len(t)} items in {reached} Adam steps{since} (loss {history[0]:.3g} -> {final:.3g}{acc_text}).",
            "",
            details,
        )
    status: Status = "warn" if task != "regression" and acc == 1.0 and math.isfinite(final) else "fail"
    return Check(
        "overfit_batch",
        status,
        f"After {len(history) - 1} Adam steps (lr {lr:g}){since} on {len(t)} items the loss went {history[0]:.3g} -> {final:.3g}{acc_text}; "
        f"target loss <= {OVERFIT_LOSS:g}{' and 100% accuracy' if task != 'regression' else ' of the label variance'}.",
        f"A model that cannot memorise {len(t)} items has a bug before it has a capacity problem: check that the loss "
        "matches the output (logits vs probabilities), that labels line up with inputs, that gradients reach "
        "every layer (see gradient_flow), that weights are not all zero (init_scale), and try more --steps.",
        details,
    )


def _loss_of(model: nn.Module, x: torch.Tensor, t: torch.Tensor, task: str) -> float:
    with torch.no_grad():
        return float(compute_loss(_logits(model, x), t, task))


def check_gradcheck(
    model: nn.Module, x: torch.Tensor, y: np.ndarray, *, coords: int = 48, seed: int = 0, fmt: str | None = None
) -> Check:
    """Analytic gradients of the loss against central finite differences, in float64 on a copy.

    Checks `coords` parameter coordinates spread over every parameter tensor: in each tensor the
    coordinates with the largest analytic gradient and random ones (a backward that returns zero
    shows in the random ones).
    """
    try:
        work = copy_model(model).double().eval()
    except Exception as exc:  # noqa: BLE001
        return _skip_untrainable("gradcheck", fmt, exc)
    xd = x.double()
    named = [(n, p) for n, p in work.named_parameters() if p.requires_grad and p.numel()]
    if not named:
        return Check("gradcheck", "skip", "The model has no trainable parameters.")
    try:
        with torch.enable_grad():
            out = _logits(work, xd)
            task = infer_task(out, y)
            t = _target(y, task, out.device)
            if task != "multiclass":
                t = t.double()
            work.zero_grad(set_to_none=True)
            compute_loss(out, t, task).backward()
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        return _skip_untrainable("gradcheck", fmt, exc)
    rng = np.random.default_rng(seed)
    per_tensor = max(1, coords // len(named))
    chosen: list[tuple[str, torch.Tensor, int, float]] = []
    for name, p in named:
        g = p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=torch.float64)
        k = min(per_tensor, p.numel())
        top = torch.topk(g.abs(), max(1, k // 2)).indices.tolist()
        rand = rng.choice(p.numel(), size=min(k, p.numel()), replace=False).tolist()
        picks = list(dict.fromkeys(top + rand))[:k]
        chosen += [(name, p, i, float(g[i])) for i in picks]
        if len(chosen) >= max(coords, len(named)):
            break
    rows: list[dict[str, Any]] = []
    for name, param, i, analytic in chosen:
        errs = []
        flat = param.data.view(-1)
        orig = float(flat[i])
        numeric = 0.0
        for h in FD_STEPS:
            flat[i] = orig + h
            fp = _loss_of(work, xd, t, task)
            flat[i] = orig - h
            fm = _loss_of(work, xd, t, task)
            flat[i] = orig
            numeric = (fp - fm) / (2 * h)
            errs.append(abs(analytic - numeric) / max(abs(analytic), abs(numeric), GRAD_FLOOR))
            if errs[-1] < GRADCHECK_WARN:
                break
        rows.append({"param": name, "index": i, "analytic": analytic, "numeric": numeric, "rel_error": min(errs)})
    worst = max(rows, key=lambda r: r["rel_error"])
    err = worst["rel_error"]
    bad = [r for r in rows if r["rel_error"] >= GRADCHECK_FAIL]
    status: Status = "fail" if err >= GRADCHECK_FAIL or not math.isfinite(err) else "warn" if err >= GRADCHECK_WARN else "pass"
    bad_params = sorted({r["param"] for r in bad})
    evidence = (
        f"Worst relative error {err:.2g} over {len(rows)} coordinates of {len(named)} parameter tensors "
        f"({len(x)} inputs, float64), at {worst['param']}[{worst['index']}]: analytic {worst['analytic']:.4g}, "
        f"numeric {worst['numeric']:.4g}."
    )
    if bad:
        evidence += f" {len(bad)} coordinates in {', '.join(bad_params[:4])} exceed {GRADCHECK_FAIL:g}."
    advice = ""
    if status != "pass":
        advice = (
            "The backward pass disagrees with the forward pass: look at custom autograd.Function backward methods, "
            "in-place operations on tensors autograd saved, .detach() / .data in the forward, and non-differentiable "
            "steps (argmax, rounding) before the layers named."
        )
    return Check(
        "gradcheck",
        status,
        evidence,
        advice,
        {"worst": worst, "coordinates": len(rows), "failing_params": bad_params, "rows": rows[:200]},
    )


def _functional_activations() -> dict[Callable[..., Any], tuple[str, tuple[float, float] | None]]:
    """Functional activations traced in forward: function -> (name, bounds of a squashing one, else None)."""
    F = nn.functional
    relus = {
        "relu": (F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_),
        "leaky_relu": (F.leaky_relu,), "relu6": (F.relu6,), "elu": (F.elu,), "selu": (F.selu, torch.selu),
        "celu": (F.celu,), "gelu": (F.gelu,), "silu": (F.silu,), "mish": (F.mish,),
    }
    squash = {
        "sigmoid": ((F.sigmoid, torch.sigmoid, torch.Tensor.sigmoid), (0.0, 1.0)),
        "tanh": ((F.tanh, torch.tanh, torch.Tensor.tanh), (-1.0, 1.0)),
        "hardsigmoid": ((F.hardsigmoid,), (0.0, 1.0)),
        "hardtanh": ((F.hardtanh,), (-1.0, 1.0)),
    }
    table: dict[Callable[..., Any], tuple[str, tuple[float, float] | None]] = {}
    for name, fns in relus.items():
        table.update(dict.fromkeys(fns, (name, None)))
    for name, (fns, bounds) in squash.items():
        table.update(dict.fromkeys(fns, (name, bounds)))
    return table


class _ActivationStats:
    """Per layer: the running max of each unit (ReLU family: dead when never positive) or the count of
    outputs within SATURATION_MARGIN of a bound (sigmoid / tanh)."""

    def __init__(self) -> None:
        self.layers: dict[tuple[str, int], dict] = {}

    def add(self, key: tuple[str, int], kind: str, bounds: tuple[float, float] | None, out: torch.Tensor) -> None:
        o = out.detach().float()
        o = o.unsqueeze(1) if o.ndim == 1 else o
        per_unit = o.transpose(0, 1).reshape(o.shape[1], -1)
        s = self.layers.setdefault(key, {"kind": kind, "max": None, "near": 0, "count": 0})
        if bounds is None:
            mx = per_unit.max(dim=1).values
            s["max"] = mx if s["max"] is None else torch.maximum(s["max"], mx)
            return
        lo, hi = bounds
        margin = SATURATION_MARGIN * (hi - lo)
        s["near"] += int(((per_unit <= lo + margin) | (per_unit >= hi - margin)).sum())
        s["count"] += per_unit.numel()
        s["units"] = per_unit.shape[0]


class _FunctionalSpy(TorchFunctionMode):
    """Sees F.relu / torch.sigmoid / x.tanh() ... called in forward and records their outputs, named
    after the layer (Linear / Conv, or a norm layer right after one) whose output they were applied to."""

    def __init__(self, producers: dict[int, str], record: Callable[[str, str, tuple[float, float] | None, torch.Tensor], None]) -> None:
        super().__init__()
        self.producers, self.record, self.table = producers, record, _functional_activations()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        hit = self.table.get(func)
        if hit is not None and args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor) and out.ndim:
            source = self.producers.get(id(args[0]), "")
            self.record(source, hit[0], hit[1], out)
        return out


NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)


@torch.no_grad()
def check_activations(model: nn.Module, xs: Iterable[torch.Tensor]) -> Check:
    """Dead ReLU-family units and saturated sigmoid/tanh layers, from forward hooks on activation
    modules and from a trace of functional activations (F.relu, torch.sigmoid, x.tanh() in forward).

    A unit is a channel (dim 1) of the activation's output. Dead: never positive over the items seen.
    Saturation: the share of all the layer's outputs within SATURATION_MARGIN of a bound.
    The model runs in eval mode and is given back in the modes it came in (diagnose.measuring).
    """
    from diagnose.measuring import measuring

    if isinstance(model, torch.jit.ScriptModule):
        return Check("activations", "skip", "TorchScript modules cannot take forward hooks after scripting.",
                     "Pass the eager model (state_dict with --arch) to see activation health.")
    acts = [(n, m) for n, m in model.named_modules() if isinstance(m, RELU_FAMILY + SQUASHING)]
    # One module object may be called several times per forward (`self.act = nn.ReLU()` reused after
    # layers of different widths): each call is its own layer, keyed (name, call number).
    stats = _ActivationStats()
    outputs: dict[tuple[str, int], torch.Tensor] = {}
    calls: dict[str, int] = {}
    producers: dict[int, str] = {}
    traced: set[str] = set()
    inside = [0]

    def record(name: str, kind: str, bounds: tuple[float, float] | None, out: torch.Tensor) -> None:
        key = (name, calls.get(name, 0))
        calls[name] = key[1] + 1
        outputs[key] = out
        stats.add(key, kind, bounds, out)

    def module_hook(name: str, m: nn.Module) -> Callable[..., None]:
        bounds = None
        if isinstance(m, SQUASHING):
            bounds = (-1.0, 1.0) if isinstance(m, (nn.Tanh, nn.Hardtanh)) else (0.0, 1.0)
            if isinstance(m, nn.Hardtanh):
                bounds = (float(m.min_val), float(m.max_val))

        def fn(_mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
            inside[0] -= 1
            if isinstance(out, torch.Tensor) and out.ndim:
                record(name, type(m).__name__, bounds, out)

        return fn

    def enter(*_: object) -> None:  # the spy must not count nn.Sigmoid's own torch.sigmoid a second time
        inside[0] += 1

    def producer_hook(name: str, norm: bool) -> Callable[..., None]:
        def fn(_mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            if isinstance(out, torch.Tensor):
                first = inp[0] if inp and isinstance(inp[0], torch.Tensor) else None
                # a norm layer right after a Linear / Conv keeps that layer's name
                producers[id(out)] = producers.get(id(first), name) if norm and first is not None else name

        return fn

    def functional(source: str, fname: str, bounds: tuple[float, float] | None, out: torch.Tensor) -> None:
        if inside[0]:
            return
        traced.add(fname)
        record(source or f"F.{fname}", f"F.{fname}", bounds, out)

    handles = [m.register_forward_hook(module_hook(n, m)) for n, m in acts]
    handles += [m.register_forward_pre_hook(enter) for _, m in acts]
    for n, m in model.named_modules():
        if _is_weighted(m):
            handles.append(m.register_forward_hook(producer_hook(n, False)))
        elif isinstance(m, NORMS):
            handles.append(m.register_forward_hook(producer_hook(n, True)))
    final_names: set[tuple[str, int]] = set()
    most_calls: dict[str, int] = {}
    items = 0
    try:
        for x in xs:
            calls.clear()
            producers.clear()
            with measuring(model), _FunctionalSpy(producers, functional):
                out = _logits(model, x)
            items += len(x)
            final_names |= {n for n, o in outputs.items() if o is out}
            outputs.clear()
            for n, k in calls.items():
                most_calls[n] = max(most_calls.get(n, 0), k)
    finally:
        for h in handles:
            h.remove()
    if not stats.layers:
        return Check(
            "activations",
            "skip",
            "No activation found: no activation modules (nn.ReLU, nn.Sigmoid, ...) and no functional call "
            "(F.relu, torch.sigmoid, x.tanh(), ...) in the forward pass.",
        )
    layers = {}
    statuses: list[Status] = []
    phrases = []
    for key, s in stats.layers.items():
        if key in final_names:
            continue  # the model's own output (a final sigmoid): confident outputs are its job
        name = key[0] if most_calls.get(key[0], 1) == 1 else f"{key[0]}#{key[1] + 1}"
        if s["max"] is not None:
            units = len(s["max"])
            dead = int((s["max"] <= 0).sum())
            share = dead / units
            layers[name] = {"kind": s["kind"], "units": units, "dead": dead, "dead_share": share}
            if share >= DEAD_WARN:
                statuses.append("fail" if share >= DEAD_FAIL else "warn")
                phrases.append(f"{name} ({s['kind']}) {dead}/{units} dead ({share * 100:.0f}%)")
        else:
            share = s["near"] / max(s["count"], 1)
            layers[name] = {"kind": s["kind"], "units": s["units"], "near_bound_share": share}
            if share >= SATURATED_WARN:
                statuses.append("fail" if share >= SATURATED_FAIL else "warn")
                phrases.append(f"{name} ({s['kind']}) {share * 100:.0f}% of outputs within 1% of a bound")
    if not layers:
        return Check("activations", "skip", "The only activation is the model's output layer.")
    status: Status = most_severe(statuses)
    dead_total = sum(v.get("dead", 0) for v in layers.values())
    relu_units = sum(v["units"] for v in layers.values() if "dead" in v)
    sq = [v for v in layers.values() if "near_bound_share" in v]
    summary = []
    if relu_units:
        summary.append(f"{dead_total}/{relu_units} ReLU-family units dead")
    if sq:
        worst = max(v["near_bound_share"] for v in sq)
        summary.append(f"at most {worst * 100:.1f}% of a sigmoid/tanh layer's outputs within 1% of a bound")
    evidence = f"Over {items:,} train items, {len(layers)} activation layer{'s' if len(layers) > 1 else ''}: " + ", ".join(summary) + "."
    if traced:
        evidence += (
            f" Functional activations ({', '.join(sorted(traced))}) traced in forward; each is named after the layer "
            "whose output it was applied to."
        )
    if phrases:
        evidence += " Worst: " + "; ".join(phrases[:4]) + "."
    advice = ""
    if status != "pass":
        advice = (
            "Dead ReLUs usually follow too high a learning rate (lower it, add warmup) or a large negative bias; "
            "LeakyReLU / PReLU keep a gradient. Saturated sigmoid / tanh units come from weights that are too large "
            "or unnormalised inputs: use Xavier init, normalise inputs, add batch norm, or switch to ReLU."
        )
    return Check("activations", status, evidence, advice, {"items": items, "layers": layers, "functional": sorted(traced)})


def _kind(m: nn.Module) -> str:
    """The layer type, also for TorchScript (original_name) modules."""
    return str(getattr(m, "original_name", type(m).__name__))


def _is_weighted(m: nn.Module) -> bool:
    """Linear / Conv layers, eager or scripted; torch.export keeps only generic modules with a weight."""
    w = getattr(m, "weight", None)
    if not isinstance(w, torch.Tensor) or w.ndim < 2:
        return False
    kind = _kind(m)
    if isinstance(m, WEIGHTED) or kind in {c.__name__ for c in WEIGHTED}:
        return True
    return kind in ("Module", "InterpreterModule") and not any(True for _ in m.children())


def _fans(w: torch.Tensor, m: nn.Module) -> tuple[int, int]:
    receptive = int(np.prod(w.shape[2:])) if w.ndim > 2 else 1
    a, b = w.shape[1] * receptive, w.shape[0] * receptive
    if _kind(m).startswith("ConvTranspose"):
        a, b = b, a  # stored (in, out / groups, k...)
    return a, b


@torch.no_grad()
def check_init_scale(fresh: nn.Module, *, source: str = "", trained: bool = False) -> Check:
    """Per layer (Linear / Conv), the weight std against He, Xavier and PyTorch's default for its fans.

    trained: the weights are not an initialization (no fresh copy could be made): only all-zero or
    constant layers count, since trained weights legitimately drift away from the init scale.
    """
    layers = [(n, m) for n, m in fresh.named_modules() if _is_weighted(m)]
    if not layers:
        return Check("init_scale", "skip", "No Linear or Conv layers to inspect.")
    rows: dict[str, dict[str, Any]] = {}
    statuses: list[Status] = []
    phrases = []
    for k, (name, m) in enumerate(layers):
        w = m.weight.detach().double()
        fan_in, fan_out = _fans(w, m)
        std = float(w.std()) if w.numel() > 1 else 0.0
        he = math.sqrt(2.0 / fan_in)
        xavier = math.sqrt(2.0 / (fan_in + fan_out))
        default = 1.0 / math.sqrt(3.0 * fan_in)
        lo, hi = min(he, xavier, default), max(he, xavier, default)
        ratio = std / lo if std < lo else std / hi if std > hi else 1.0
        last = k == len(layers) - 1
        row: dict[str, Any] = {"fan_in": fan_in, "fan_out": fan_out, "std": std, "he": he, "xavier": xavier, "ratio": ratio}
        rows[name] = row
        if std == 0.0:
            if last:
                row["note"] = "zero output layer (a known recipe when the layers before it are random)"
                continue
            statuses.append("fail")
            const = float(w.reshape(-1)[0])
            phrases.append(f"{name} is {'all zero' if const == 0 else f'constant {const:g}'} (every unit computes the same thing)")
            continue
        off = ratio if ratio >= 1 else 1 / ratio
        if trained:
            continue
        if off >= SCALE_FAIL:
            statuses.append("fail")
        elif off >= SCALE_WARN:
            statuses.append("warn")
        else:
            continue
        phrases.append(f"{name} std {std:.3g} vs He {he:.3g} / Xavier {xavier:.3g} ({off:.0f}x {'above' if ratio > 1 else 'below'})")
    status: Status = most_severe(statuses)
    evidence = f"{len(layers)} layers ({source}): " + (
        "; ".join(phrases[:4]) + "."
        if phrases
        else "no layer is all zero or constant (trained weights: pass --arch to compare a fresh initialization with He / Xavier)."
        if trained
        else "every weight std lies within 2x of He / Xavier / PyTorch's default for its fan-in and fan-out."
    )
    advice = ""
    if status != "pass":
        advice = (
            "Initialise with small random numbers scaled to the fan-in: He (kaiming_normal_) before ReLUs, Xavier "
            "(xavier_uniform_) before tanh / sigmoid. All-zero or constant weights never break symmetry: every unit "
            "gets the same gradient and stays identical."
        )
    return Check("init_scale", status, evidence, advice, {"layers": rows})


def check_gradient_flow(model: nn.Module, x: torch.Tensor, y: np.ndarray, *, fmt: str | None = None) -> Check:
    """Per-layer gradient norms of the loss on one batch; the first-to-last RMS gradient ratio."""
    try:
        work = copy_model(model)
    except Exception as exc:  # noqa: BLE001
        return _skip_untrainable("gradient_flow", fmt, exc)
    _no_dropout(work)
    # "First" and "last" in the order the forward pass runs the layers, not the order __init__ named
    # them (a head defined before the body would turn vanishing into exploding). TorchScript takes no
    # hooks: there the definition order stands.
    ran: dict[str, int] = {}

    def seen(name: str) -> Callable[..., None]:
        def hook(*_: object) -> None:  # returns None: a hook's return value would replace the output
            ran.setdefault(name, len(ran))

        return hook

    handles = []
    if not isinstance(work, torch.jit.ScriptModule):
        for name, m in work.named_modules():
            if isinstance(getattr(m, "weight", None), torch.Tensor):
                handles.append(m.register_forward_hook(seen(name)))
    try:
        with torch.enable_grad():
            out = _logits(work, x)
            task = infer_task(out, y)
            work.zero_grad(set_to_none=True)
            compute_loss(out, _target(y, task, out.device), task).backward()
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        return _skip_untrainable("gradient_flow", fmt, exc)
    finally:
        for h in handles:
            h.remove()
    layers: list[dict[str, Any]] = []
    for name, m in sorted(work.named_modules(), key=lambda nm: ran.get(nm[0], len(ran))):
        ps = [p for p in m.parameters(recurse=False) if p.requires_grad]
        weight = getattr(m, "weight", None)
        if not ps or not isinstance(weight, torch.Tensor) or weight.ndim < 2:
            continue
        sq = sum(float((p.grad.double() ** 2).sum()) for p in ps if p.grad is not None)
        numel = sum(p.numel() for p in ps)
        layers.append({"layer": name or type(m).__name__, "grad_norm": math.sqrt(sq), "grad_rms": math.sqrt(sq / numel)})
    if len(layers) < 2:
        return Check("gradient_flow", "skip", "Fewer than two layers with weight matrices: no flow to measure.",
                     "", {"layers": layers})
    first, last = layers[0], layers[-1]
    ratio = first["grad_rms"] / last["grad_rms"] if last["grad_rms"] > 0 else (math.inf if first["grad_rms"] > 0 else float("nan"))
    zero = [r["layer"] for r in layers if r["grad_norm"] == 0.0]
    finite = all(math.isfinite(r["grad_norm"]) for r in layers)
    status: Status = "pass"
    if not finite or not math.isfinite(ratio) or ratio == 0 or ratio <= 1 / FLOW_FAIL or ratio >= FLOW_FAIL:
        status = "fail"
    elif ratio <= 1 / FLOW_WARN or ratio >= FLOW_WARN or zero:
        status = "warn"
    evidence = (
        f"RMS gradient {first['layer']} {first['grad_rms']:.3g}, {last['layer']} {last['grad_rms']:.3g}: "
        f"first/last ratio {ratio:.3g} over {len(layers)} layers on {len(x)} items."
    )
    if zero:
        evidence += f" No gradient at all reaches {', '.join(zero[:4])}."
    if not finite:
        evidence += " Some gradients are NaN or infinite."
    advice = ""
    if status != "pass":
        advice = (
            "Vanishing (ratio far below 1): saturated sigmoid / tanh, dead ReLUs, all-zero weights, or too deep a "
            "stack without residual connections or normalisation. Exploding (far above 1): weights initialised too "
            "large; clip gradients, lower the learning rate, add batch norm, use He / Xavier init."
        )
    return Check("gradient_flow", status, evidence, advice, {"ratio": ratio, "layers": layers, "zero_gradient": zero})


# --- the whole checklist on a model and a training split --------------------------------------------


def fresh_weights(model: nn.Module, *, arch: str | None, arch_kwargs: dict | None, fmt: str) -> tuple[nn.Module | None, str]:
    """Freshly initialised weights to check the design with, and where they came from.

    --arch given: a new model built by the factory (its own init, exactly what training starts from);
    format 'arch': the loaded model is already fresh; otherwise a copy with reset_parameters() called
    on every submodule that has one (PyTorch's default init: custom init code in __init__ is not rerun).
    """
    if fmt == "arch":
        return model, "built by --arch"
    if arch is not None:
        from diagnose.io.models import build_arch

        return build_arch(arch, arch_kwargs).eval(), "built by --arch"
    if fmt in ("torchscript", "export"):
        return None, ""
    fresh = reinitialise(model)
    return fresh, "reset_parameters() on a copy" if fresh is not None else ""


def check_arch_fits(model: nn.Module, fmt: str, *, arch: str | None, arch_kwargs: dict | None, what: str) -> None:
    """A complete model file (TorchScript, torch.export, a pickled module) carries its architecture;
    an --arch beside it is only used for fresh weights and hooks, so it must be the same network: the
    same parameter shapes. Otherwise the checks would describe an unrelated design."""
    if arch is None or fmt not in ("torchscript", "export", "pickle"):
        return
    from diagnose.exceptions import UsageError
    from diagnose.io.models import build_arch

    twin = build_arch(arch, arch_kwargs)
    theirs = sorted(tuple(p.shape) for p in model.state_dict().values() if p.dim() > 0)
    ours = sorted(tuple(p.shape) for p in twin.state_dict().values() if p.dim() > 0)
    if theirs != ours:
        n_theirs, n_ours = sum(math.prod(t) for t in theirs), sum(math.prod(t) for t in ours)
        raise UsageError(
            f"--arch {arch}: expected the architecture of {what} (a {fmt} file carries its own), got one whose "
            f"parameters do not fit it ({len(ours)} tensors, {n_ours:,} values against {len(theirs)} tensors, "
            f"{n_theirs:,} values); leave --arch out (or remove arch from the project settings) for this file"
        )


def eager_twin(model: nn.Module, *, arch: str | None, arch_kwargs: dict | None) -> nn.Module | None:
    """For TorchScript with --arch: the eager architecture holding the same weights (hooks need it)."""
    if arch is None or not isinstance(model, torch.jit.ScriptModule):
        return None
    from diagnose.io.models import build_arch

    twin = build_arch(arch, arch_kwargs)
    try:
        twin.load_state_dict(model.state_dict())
    except RuntimeError:
        return None
    return twin.eval()


# What a model's first layer can be: the inputs it receives are what training statistics are about.
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
_FIRST = (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding, nn.RNNBase, *_NORMS)


def first_layer_inputs(model: nn.Module, xs: Iterable[torch.Tensor]) -> tuple[str, nn.Module, object] | None:
    """What the model's first layer (in forward order: a linear, convolution, normalization, embedding or
    recurrent layer) receives over the batches `xs`: (its name, the layer, an InputSummary of its
    inputs). A model that scales or normalizes its inputs inside `forward` is measured after that.
    None when it cannot be hooked (TorchScript, torch.export) or has no such layer. Runs in eval mode
    and gives the model back as it was (diagnose.measuring)."""
    from diagnose.core.datachecks import InputSummary
    from diagnose.measuring import measuring

    if isinstance(model, torch.jit.ScriptModule) or not any(isinstance(m, _FIRST) for m in model.modules()):
        return None
    order: list[tuple[str, nn.Module]] = []

    def note(name: str, module: nn.Module) -> Callable[..., None]:
        def hook(_m: nn.Module, _inputs: tuple) -> None:
            if not order:
                order.append((name, module))
        return hook

    batches = iter(xs)
    first = next(batches, None)
    if first is None:
        return None
    handles = [m.register_forward_pre_hook(note(n, m)) for n, m in model.named_modules() if isinstance(m, _FIRST)]
    try:
        with measuring(model):
            model(first)
    except Exception:  # noqa: BLE001 - a model _probe accepted but that needs more than x: measure raw inputs
        return None
    finally:
        for h in handles:
            h.remove()
    if not order:
        return None
    name, layer = order[0]
    summary = InputSummary()
    shape: list[torch.Size] = []

    def grab(_m: nn.Module, inputs: tuple) -> None:
        x = inputs[0] if inputs else None
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim >= 2:
            # Values the model only reshaped or changed one by one (a flatten, an in-forward (x - m) / s)
            # are grouped as the stored inputs are: per image channel, per table column.
            if x.numel() == shape[-1].numel():
                x = x.reshape(shape[-1])
            summary.update(x.detach().float().cpu().numpy())

    handle = layer.register_forward_pre_hook(grab)
    try:
        with measuring(model):
            for x in (first, *batches):
                shape.append(x.shape)
                model(x)
    finally:
        handle.remove()
    return name or type(layer).__name__, layer, summary


class _Stream:
    """Re-iterable batches of a split's sampled items on a device: x, or (x, y) with_labels."""

    def __init__(self, split: object, indices: np.ndarray, device: str, *, with_labels: bool, size: int = 256) -> None:
        self.split, self.indices, self.device, self.with_labels, self.size = split, indices, device, with_labels, size

    def __iter__(self) -> Iterator:
        for b in self.split.batches(self.size, indices=self.indices):  # type: ignore[attr-defined]
            x = b.x.to(self.device)
            yield (x, np.asarray(b.y)) if self.with_labels else x


def _probe(model: nn.Module, split: object, x: torch.Tensor, labels: np.ndarray) -> None:
    """One forward pass before the checks: inputs the model cannot take, or labels beyond its outputs,
    are the user's to fix (a one-line error, as `diagnose gaps` words it), not a check result."""
    from diagnose.evaluate import FORWARD_ERRORS, check_labels, forward_error
    from diagnose.measuring import measuring

    try:
        with measuring(model):
            out = _logits(model, x)
    except FORWARD_ERRORS as exc:
        raise forward_error(split, exc, model, tuple(x.shape)) from None  # type: ignore[arg-type]
    if isinstance(out, torch.Tensor) and infer_task(out, labels) == "multiclass":
        check_labels(split, labels, int(out.shape[1]))  # type: ignore[arg-type]


def run_checks(
    model: nn.Module,
    split: object,
    *,
    fresh: nn.Module | None,
    fresh_source: str,
    fmt: str,
    eager: nn.Module | None = None,
    batch: int = 16,
    steps: int = 500,
    lr: float = OVERFIT_LR,
    items: int = 2048,
    gradcheck_inputs: int = 2,
    gradcheck_coords: int = 48,
    seed: int = 0,
    device: str = "cpu",
    advance: Callable[[int], None] | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
) -> list[Check]:
    """Every sanity check on `model` with items of a training split (io.splits.Split).

    Uses a seeded random sample: `batch` items to overfit and for gradcheck / gradient_flow, and up to
    `items` items (in batches of 256) for init_loss, activations and input_stats.
    """
    from diagnose.core.datachecks import InputSummary

    chosen = select_checks(only, skip)
    rng = np.random.default_rng(seed)
    n = split.n  # type: ignore[attr-defined]
    sample = np.sort(rng.choice(n, size=min(items, n), replace=False))
    few = rng.choice(n, size=min(batch, n), replace=False)
    summary = InputSummary()
    for b in split.batches(256, indices=sample):  # type: ignore[attr-defined]
        summary.update(b.x.numpy())
    # The sample is streamed again by each check that needs it, so memory holds one batch, not --items.
    fresh_batches = _Stream(split, sample, device, with_labels=True)
    xs = _Stream(split, sample, device, with_labels=False)
    one = next(split.batches(len(few), indices=few))  # type: ignore[attr-defined]
    x1, y1 = one.x.to(device), np.asarray(one.y)
    _probe(model, split, next(iter(xs)), np.asarray(split.labels()))  # type: ignore[attr-defined]
    torch.manual_seed(seed)
    cpu = torch.device("cpu")
    steps_: list[Callable[[], Check]] = [
        lambda: check_init_loss(fresh, fresh_batches, source=fresh_source),
        lambda: check_overfit_batch(
            fresh if fresh is not None else model, x1, y1, steps=steps, lr=lr, fmt=fmt,
            start=fresh_source if fresh is not None else "the loaded weights",
        ),
        lambda: check_gradcheck(
            copy_model(model).to(cpu), x1[:gradcheck_inputs].to(cpu), y1[:gradcheck_inputs],
            coords=gradcheck_coords, seed=seed, fmt=fmt,
        ),
        lambda: check_activations(eager if eager is not None else model, xs)
        if fmt != "export"
        else Check(
            "activations", "skip", "A torch.export program keeps no activation modules to hook.",
            "Pass the eager model (state_dict with --arch) to see activation health.",
        ),
        lambda: check_init_scale(
            fresh if fresh is not None else model, source=fresh_source or "weights as loaded", trained=fresh is None
        ),
        lambda: check_gradient_flow(model, x1, y1, fmt=fmt),
        lambda: _input_stats(eager if eager is not None else model, xs, summary, split=getattr(split, "name", "train"),
                             sampled=n if len(sample) < n else None),
    ]
    checks = []
    for cid, run in zip(CHECK_IDS, steps_, strict=True):
        if cid in chosen:
            checks.append(run())
        else:
            checks.append(Check(cid, "skip", "Left out (--only / --skip)."))
        if advance is not None:
            advance(1)
    return checks


def _input_stats(model: nn.Module, xs: Iterable[torch.Tensor], raw: object, *, split: str, sampled: int | None) -> Check:
    """The input statistics check on what the model's first layer receives: after any scaling the
    model does inside `forward`. A first layer that normalizes (batch, layer, group or instance norm)
    standardizes whatever it is given; token ids into an embedding have no scale to check."""
    from diagnose.core.datachecks import check_input_stats

    seen = first_layer_inputs(model, xs)
    if seen is None:  # a model that cannot be hooked: the stored values are what it receives, as far as we know
        return check_input_stats(raw, split=split, sampled=sampled)  # type: ignore[arg-type]
    name, layer, summary = seen
    kind = type(layer).__name__
    if isinstance(layer, nn.Embedding):
        return Check("input_stats", "skip", f"The first layer ({name}, {kind}) takes token ids: they have no mean or "
                     "scale to check.", details={"split": split, "layer": name, "layer_type": kind})
    if isinstance(layer, _NORMS):
        return Check("input_stats", "pass", f"The model normalizes its inputs itself: its first layer is {name} ({kind}), "
                     "which standardizes whatever it receives.", details={"split": split, "layer": name, "layer_type": kind})
    check = check_input_stats(summary, split=split, sampled=sampled)  # type: ignore[arg-type]
    where = f"At the input of the first layer, {name} ({kind}): "
    return Check(check.id, check.status, where + check.evidence, check.advice,
                 {**check.details, "layer": name, "layer_type": kind})


def select_checks(only: Iterable[str] | None = None, skip: Iterable[str] = ()) -> set[str]:
    """The check ids to run: all of CHECK_IDS, or `only` of them, less `skip`. An unknown id is a usage error."""
    from diagnose.exceptions import UsageError

    for option, ids in (("--only", only or ()), ("--skip", skip)):
        unknown = [i for i in ids if i not in CHECK_IDS]
        if unknown:
            raise UsageError(f"{option}: expected check ids among {', '.join(CHECK_IDS)}, got {', '.join(unknown)}; fix the list")
    return (set(only) if only else set(CHECK_IDS)) - set(skip)
