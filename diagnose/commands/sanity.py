"""`diagnose sanity`: the pre-training checklist (init loss, overfit a batch, gradient check, activations,
init scale, gradient flow, input statistics) run on a real model and its training data."""

from __future__ import annotations

from pathlib import Path

import typer

from diagnose import options as opt
from diagnose.exceptions import ArgumentError, UsageError
from diagnose.options import Device, parse_floats, parse_image_size

NAME = "sanity"
HELP = (
    "Check MODEL (or a fresh model from --arch alone) on DATA's training split: loss at init, overfitting "
    "one batch, gradient check, dead / saturated units, init scale, gradient flow, input statistics."
)


def command(
    model: Path | None = typer.Argument(None, readable=False, help="Model file (TorchScript, torch.export, state dict, checkpoint, safetensors, pickle). Leave out with --arch to check a fresh design.", show_default=False),
    data: Path | None = typer.Argument(None, readable=False, help="Data folder with a train split (train.pt/.npz/.csv/.parquet or train/<class>/ images).", show_default=False),
    arch: opt.Arch = None,
    arch_kwargs: opt.ArchKwargs = None,
    trust_pickle: opt.TrustPickle = False,
    trust_settings: opt.TrustSettings = False,
    app_dir: opt.AppDir = opt.APP_DIR,
    split: str = typer.Option("train", "--split", help="Which split's items to use."),
    batch: int = typer.Option(16, "--batch", min=1, help="Items in the batch to overfit (also used by gradcheck and gradient_flow)."),
    steps: int = typer.Option(500, "--steps", min=1, help="Most Adam steps for overfit_batch."),
    lr: float = typer.Option(3e-3, "--lr", min=0.0, help="Adam learning rate for overfit_batch."),
    items: int = typer.Option(2048, "--items", min=1, help="Training items sampled for init_loss, activations and input_stats."),
    gradcheck_coords: int = typer.Option(48, "--gradcheck-coords", min=1, help="Parameter coordinates compared with finite differences."),
    seed: opt.Seed = opt.SEED,
    device: Device = typer.Option(Device.auto, "--device", help="Where the checks run: auto picks cuda, then mps, then cpu (gradcheck always runs in float64 on the CPU)."),
    label_column: opt.LabelColumn = opt.LABEL_COLUMN,
    image_size: opt.ImageSize = None,
    mean: opt.Mean = None,
    std: opt.Std = None,
    only: str | None = typer.Option(None, "--only", help="Run only these checks, comma-separated, e.g. init_loss,activations."),
    skip: str | None = typer.Option(None, "--skip", help="Leave these checks out, comma-separated, e.g. overfit_batch,gradcheck (the slow ones)."),
    fail_on: opt.FailOnOpt = None,
    json_out: opt.Json = False,
    markdown: opt.Markdown = False,
) -> None:
    opt.one_format(json_out, markdown)
    if data is None and model is not None and model.is_dir() and arch is not None:
        model, data = None, model  # `diagnose sanity --arch net.py:Net DATA`: a fresh design
    if data is None:
        raise UsageError("diagnose sanity: expected MODEL DATA (or --arch ... DATA), got no DATA; run e.g. diagnose sanity model.pt data/")
    from diagnose import api
    from diagnose.io.settings import INPUT_KEYS, parse_arch_kwargs, resolve

    # Options not typed come from DATA/diagnose.toml, then [tool.diagnose] in pyproject.toml.
    settings = resolve(data, trust_settings=trust_settings, arch=arch, arch_kwargs=parse_arch_kwargs(arch_kwargs), label_column=label_column,
                       image_size=parse_image_size(image_size), mean=parse_floats(mean, "--mean"),
                       std=parse_floats(std, "--std"))
    arch = settings.get("arch")
    if model is None and arch is None:
        raise UsageError("MODEL: expected a model file or --arch, got neither; pass one")
    try:
        checks = api.sanity(
            model, data, split=split, batch=batch, steps=steps, lr=lr, items=items, gradcheck_coords=gradcheck_coords,
            seed=seed, device=device.value, arch=arch, arch_kwargs=settings.get("arch_kwargs"), trust_pickle=trust_pickle,
            app_dir=app_dir, label_column=settings.get("label_column"), image_size=settings.get("image_size"),
            mean=settings.get("mean"), std=settings.get("std"), only=_ids(only), skip=_ids(skip) or (),
            show_progress=not (json_out or markdown),
        )
    except ArgumentError as exc:
        if exc.argument != "split":
            raise
        from diagnose.io.splits import missing_split

        raise missing_split(data, split, "for the sanity checks") from None
    what = model.name if model is not None else f"--arch {arch}"
    title = f"diagnose sanity: {what} ({checks.model_format}) on {data.name or data}/{checks.split}"
    where = settings.describe(INPUT_KEYS)
    from diagnose.core.checks import gate_checks
    from diagnose.render.checks import emit_checks

    emit_checks(checks, f"{title} ({where})" if where else title, json_out=json_out, markdown=markdown)
    gate_checks(checks, fail_on.value if fail_on else None, str(model) if model is not None else f"--arch {arch}")


def _ids(text: str | None) -> list[str] | None:
    """'a, b' -> ['a', 'b']."""
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]
