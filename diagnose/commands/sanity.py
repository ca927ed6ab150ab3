"""`diagnose sanity`: the pre-training checklist (init loss, overfit a batch, gradient check, activations,
init scale, gradient flow, input statistics) run on a real model and its training data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from diagnose.exceptions import DataError, UsageError
from diagnose.options import Device, FailOn, parse_floats, parse_image_size

NAME = "sanity"
HELP = (
    "Check MODEL (or a fresh model from --arch alone) on DATA's training split: loss at init, overfitting "
    "one batch, gradient check, dead / saturated units, init scale, gradient flow, input statistics."
)


def command(
    model: Path | None = typer.Argument(None, readable=False, help="Model file (TorchScript, torch.export, state dict, checkpoint, safetensors, pickle). Leave out with --arch to check a fresh design.", show_default=False),
    data: Path | None = typer.Argument(None, readable=False, help="Data folder with a train split (train.pt/.npz/.csv/.parquet or train/<class>/ images).", show_default=False),
    arch: str | None = typer.Option(None, "--arch", help="Architecture: package.module:factory or path/to/file.py:ClassName. Needed for weights-only files; alone, checks a freshly built model."),
    arch_kwargs: str | None = typer.Option(None, "--arch-kwargs", help="JSON object of keyword arguments for --arch, e.g. '{\"hidden\": 64}'."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow a whole pickled nn.Module (runs code stored in the file: only for files you trust)."),
    app_dir: Path = typer.Option(Path("."), "--app-dir", readable=False, help="Folder put first on sys.path so --arch module specs and pickled models find your own code (as python -m would)."),
    split: str = typer.Option("train", "--split", help="Which split's items to use."),
    batch: int = typer.Option(16, "--batch", min=1, help="Items in the batch to overfit (also used by gradcheck and gradient_flow)."),
    steps: int = typer.Option(500, "--steps", min=1, help="Most Adam steps for overfit_batch."),
    lr: float = typer.Option(3e-3, "--lr", min=0.0, help="Adam learning rate for overfit_batch."),
    items: int = typer.Option(2048, "--items", min=1, help="Training items sampled for init_loss, activations and input_stats."),
    gradcheck_coords: int = typer.Option(48, "--gradcheck-coords", min=1, help="Parameter coordinates compared with finite differences."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the samples and of the fresh weights."),
    device: Device = typer.Option(Device.auto, "--device", help="Where the checks run: auto picks cuda, then mps, then cpu (gradcheck always runs in float64 on the CPU)."),
    label_column: str = typer.Option("label", "--label-column", help="Label column in CSV / Parquet splits."),
    image_size: str | None = typer.Option(None, "--image-size", help="Resize images to H,W (or one number for square)."),
    mean: str | None = typer.Option(None, "--mean", help="Per-channel mean subtracted from image pixels in [0, 1], e.g. 0.485,0.456,0.406."),
    std: str | None = typer.Option(None, "--std", help="Per-channel standard deviation pixels are divided by."),
    only: str | None = typer.Option(None, "--only", help="Run only these checks, comma-separated, e.g. init_loss,activations."),
    skip: str | None = typer.Option(None, "--skip", help="Leave these checks out, comma-separated, e.g. overfit_batch,gradcheck (the slow ones)."),
    fail_on: FailOn | None = typer.Option(None, "--fail-on", help="Exit with code 3 when any check reaches this status (warn: warn or fail)."),
    json_out: bool = typer.Option(False, "--json", help="Print {\"checks\": [...]} as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the checks as Markdown."),
) -> None:
    if json_out and markdown:
        raise UsageError("--json and --markdown: expected at most one output format, got both; pick one")
    if data is None and model is not None and model.is_dir() and arch is not None:
        model, data = None, model  # `diagnose sanity --arch net.py:Net DATA`: a fresh design
    if data is None:
        raise UsageError("diagnose sanity: expected MODEL DATA (or --arch ... DATA), got no DATA; run e.g. diagnose sanity model.pt data/")
    import json

    from diagnose.io.settings import INPUT_KEYS, parse_arch_kwargs, resolve

    # Options not typed come from DATA/diagnose.toml, then [tool.diagnose] in pyproject.toml.
    settings = resolve(data, arch=arch, arch_kwargs=parse_arch_kwargs(arch_kwargs), label_column=label_column,
                       image_size=parse_image_size(image_size), mean=parse_floats(mean, "--mean"),
                       std=parse_floats(std, "--std"))
    arch = settings.get("arch")
    if model is None and arch is None:
        raise UsageError("MODEL: expected a model file or --arch, got neither; pass one")
    kwargs = settings.get("arch_kwargs")
    checks, title = _run(
        model, data, arch=arch, arch_kwargs=json.dumps(kwargs) if kwargs else None, trust_pickle=trust_pickle,
        app_dir=app_dir, split=split, batch=batch, steps=steps, lr=lr, items=items, coords=gradcheck_coords, seed=seed,
        device=device.value, label_column=settings.get("label_column"), image_size=settings.get("image_size"),
        mean=settings.get("mean"), std=settings.get("std"), show_progress=not (json_out or markdown),
        only=_ids(only), skip=_ids(skip) or [],
    )
    where = settings.describe(INPUT_KEYS)
    if where:
        title = f"{title} ({where})"
    from diagnose.core.checks import gate_checks
    from diagnose.render.checks import emit_checks

    emit_checks(checks, title, json_out=json_out, markdown=markdown)
    gate_checks(checks, fail_on.value if fail_on else None, str(model) if model is not None else f"--arch {arch}")


def _run(
    model_path: Path | None, data: Path, *, arch: str | None, arch_kwargs: str | None, trust_pickle: bool,
    app_dir: Path | None, split: str,
    batch: int, steps: int, lr: float, items: int, coords: int, seed: int, device: str, label_column: str,
    image_size: tuple[int, int] | None, mean: list[float] | None, std: list[float] | None, show_progress: bool,
    only: list[str] | None = None, skip: list[str] | None = None,
) -> tuple[list[Any], str]:
    import torch

    from diagnose import checklist as sanity
    from diagnose.evaluate import match_image_channels, resolve_device
    from diagnose.io.models import arch_kwargs_from_json, load_model
    from diagnose.io.splits import canonical_split, load_dataset
    from diagnose.progress import progress_bar

    name = canonical_split(split)
    dev = resolve_device(device)
    kwargs = arch_kwargs_from_json(arch_kwargs)
    torch.manual_seed(seed)
    loaded = load_model(model_path, arch=arch, arch_kwargs=kwargs, trust_pickle=trust_pickle, device=str(dev), app_dir=app_dir)
    dataset = load_dataset(data, label_column=label_column, image_size=image_size, mean=mean, std=std)
    dataset = match_image_channels(dataset, loaded.module)
    if name not in dataset.splits:
        raise DataError(
            f"{data}: expected a {name} split for the sanity checks, got {', '.join(dataset.splits) or 'none'}; "
            f"pass --split {next(iter(dataset.splits), 'train')}"
        )
    sanity.check_arch_fits(loaded.module, loaded.format, arch=arch, arch_kwargs=kwargs,
                           what=model_path.name if model_path is not None else "MODEL")
    torch.manual_seed(seed)
    fresh, source = sanity.fresh_weights(loaded.module, arch=arch, arch_kwargs=kwargs, fmt=loaded.format)
    if fresh is not None:
        fresh.to(dev)
    eager = sanity.eager_twin(loaded.module, arch=arch, arch_kwargs=kwargs)
    if eager is not None:
        eager.to(dev)
    with progress_bar("sanity checks", total=len(sanity.CHECK_IDS), enabled=show_progress) as advance:
        checks = sanity.run_checks(
            loaded.module, dataset.splits[name], fresh=fresh, fresh_source=source, fmt=loaded.format, eager=eager,
            batch=batch, steps=steps, lr=lr, items=items, gradcheck_coords=coords, seed=seed, device=str(dev),
            advance=advance, only=only, skip=skip or (),
        )
    what = model_path.name if model_path is not None else f"--arch {arch}"
    return checks, f"diagnose sanity: {what} ({loaded.format}) on {data.name or data}/{name}"


def _ids(text: str | None) -> list[str] | None:
    """'a, b' -> ['a', 'b']; checked against the check ids before any work."""
    if text is None:
        return None
    from diagnose.checklist import select_checks

    ids = [t.strip() for t in text.split(",") if t.strip()]
    select_checks(ids, ())
    return ids
