"""`diagnose lr-find`: the learning-rate range test, repeated, with a suggestion and the rule behind it."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from diagnose import options as opt
from diagnose.exceptions import DataError, UsageError

NAME = "lr-find"
HELP = (
    "Sweep the learning rate exponentially over a few mini-batches from fresh weights (--arch alone) or "
    "MODEL's weights, several times, and suggest a rate and a range, with the rule behind each number."
)


class OptimizerName(str, enum.Enum):
    sgd = "sgd"
    adam = "adam"
    adamw = "adamw"


def command(
    model: Annotated[Path | None, typer.Argument(readable=False, help="Model file to fine-tune from (any format gaps reads). Leave out with --arch to start from fresh weights.", show_default=False)] = None,
    data: Annotated[Path | None, typer.Argument(readable=False, help="Data folder with a train split.", show_default=False)] = None,
    arch: opt.Arch = None,
    arch_kwargs: opt.ArchKwargs = None,
    trust_pickle: opt.TrustPickle = False,
    app_dir: opt.AppDir = opt.APP_DIR,
    optimizer: Annotated[OptimizerName, typer.Option("--optimizer", help="The optimizer you will train with.")] = OptimizerName.sgd,
    momentum: Annotated[float, typer.Option("--momentum", min=0.0, max=0.999, help="SGD momentum, or Adam / AdamW beta1.")] = 0.9,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", min=0.0, help="Weight decay (default: the optimizer's own, 0.01 for AdamW, else 0).")] = None,
    start: Annotated[float, typer.Option("--start", help="First learning rate of the sweep.")] = 1e-7,
    end: Annotated[float, typer.Option("--end", help="Last learning rate of the sweep.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", min=5, help="Mini-batches per sweep.")] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Items per mini-batch (use your training batch size).")] = 64,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Sweeps, each with its own seed and batch order.")] = 3,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Figure to write (.png, .svg or .pdf); default lr-find.png in the current folder.")] = None,
    no_plot: Annotated[bool, typer.Option("--no-plot", help="Write no figure.")] = False,
    split: Annotated[str, typer.Option("--split", help="Which split's items to train on.")] = "train",
    seed: opt.Seed = opt.SEED,
    device: opt.DeviceOpt = opt.Device.auto,
    label_column: opt.LabelColumn = opt.LABEL_COLUMN,
    image_size: opt.ImageSize = None,
    mean: opt.Mean = None,
    std: opt.Std = None,
    json_out: opt.Json = False,
) -> None:
    if data is None and model is not None and model.is_dir():
        model, data = None, model  # `diagnose lr-find --arch net.py:Net DATA`: fresh weights
    if data is None:
        raise UsageError("diagnose lr-find: expected [MODEL] DATA, got no DATA; run e.g. diagnose lr-find --arch net.py:Net data/")
    import json

    from diagnose.io.settings import parse_arch_kwargs, resolve

    # Options not typed come from DATA/diagnose.toml, then [tool.diagnose] in pyproject.toml.
    settings = resolve(data, arch=arch, arch_kwargs=parse_arch_kwargs(arch_kwargs), label_column=label_column,
                       image_size=opt.parse_image_size(image_size), mean=opt.parse_floats(mean, "--mean"),
                       std=opt.parse_floats(std, "--std"))
    arch, kwargs = settings.get("arch"), settings.get("arch_kwargs")
    if model is None and arch is None:
        raise UsageError("MODEL: expected a model file or --arch, got neither; pass one")
    if start <= 0 or end <= 0:
        raise UsageError(f"--start {start:g} / --end {end:g}: expected positive rates, got {min(start, end):g}; pass e.g. --start 1e-7 --end 10")
    if start >= end:
        raise UsageError(f"--start {start:g}: expected a rate below --end {end:g}, got one at or above it; lower --start")
    target = None if no_plot else (out or Path("lr-find.png"))
    if target is not None:
        from diagnose.io.outputs import check_target, refuse_inputs

        if target.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise UsageError(f"--out {target}: expected a .png, .svg or .pdf file, got {target.suffix or 'no extension'}; name it lr.png")
        refuse_inputs(target, [model, data])
        check_target(target)
    res, title = _run(
        model, data, arch=arch, arch_kwargs=json.dumps(kwargs) if kwargs else None, trust_pickle=trust_pickle,
        app_dir=app_dir, split=split, optimizer=optimizer.value, momentum=momentum, weight_decay=weight_decay,
        start=start, end=end, steps=steps, batch_size=batch_size, repeats=repeats, seed=seed, device=device.value,
        label_column=settings.get("label_column"), image_size=settings.get("image_size"), mean=settings.get("mean"),
        std=settings.get("std"), show_progress=not json_out,
    )
    kept = None
    if target is not None:
        from diagnose.plots.curves import save_figure
        from diagnose.plots.lrfind import lrfind_figure

        kept = save_figure(lrfind_figure(res, title=title), str(target))
    from diagnose.render.lrfind import print_result

    print_result(res, title, json_out=json_out, figure=target, kept=kept)


def _run(
    model_path: Path | None, data: Path, *, arch: str | None, arch_kwargs: str | None, trust_pickle: bool,
    app_dir: Path, split: str, optimizer: str, momentum: float, weight_decay: float | None, start: float, end: float,
    steps: int, batch_size: int, repeats: int, seed: int, device: str, label_column: str,
    image_size: tuple[int, int] | None, mean: list[float] | None, std: list[float] | None, show_progress: bool,
) -> tuple[Any, str]:
    import torch

    from diagnose.evaluate import match_image_channels, resolve_device
    from diagnose.io.models import arch_kwargs_from_json, load_model
    from diagnose.io.splits import canonical_split, load_dataset
    from diagnose.lrfind import lr_find, starting_weights
    from diagnose.progress import progress_bar

    name = canonical_split(split)
    dev = resolve_device(device)
    kwargs = arch_kwargs_from_json(arch_kwargs)
    torch.manual_seed(seed)
    loaded = load_model(model_path, arch=arch, arch_kwargs=kwargs, trust_pickle=trust_pickle, device=str(dev), app_dir=app_dir)
    if model_path is not None and not loaded.trainable:
        raise UsageError(
            f"{model_path}: expected weights that can be trained, got a {loaded.format} program; "
            "pass the state_dict with --arch (or --arch alone for fresh weights)"
        )
    dataset = match_image_channels(load_dataset(data, label_column=label_column, image_size=image_size, mean=mean, std=std), loaded.module)
    if name not in dataset.splits:
        raise DataError(f"{data}: expected a {name} split to sweep on, got {', '.join(dataset.splits) or 'none'}; pass --split {next(iter(dataset.splits), 'train')}")
    from diagnose.checklist import _probe

    train = dataset.splits[name]
    _probe(loaded.module, train, next(train.batches(8)).x.to(dev), train.labels())
    from diagnose.checklist import eager_twin

    twin = eager_twin(loaded.module, arch=arch, arch_kwargs=kwargs)  # TorchScript with --arch: train the eager twin
    module = twin if twin is not None else loaded.module
    make, source = starting_weights(module, fresh=model_path is None, arch=arch, arch_kwargs=kwargs, app_dir=app_dir)
    with progress_bar("lr-find sweeps", total=steps * repeats, enabled=show_progress) as advance:
        res = lr_find(
            make, train, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, start=start,
            end=end, steps=steps, batch_size=batch_size, repeats=repeats, seed=seed, device=dev, advance=advance,
        )
    res.source = source
    res.optimizer = optimizer
    where, _, factory = (arch or "").rpartition(":")
    what = model_path.name if model_path is not None else f"{Path(where).name}:{factory}"
    return res, f"lr-find: {what}, {optimizer}, {repeats} x {steps} steps of {batch_size} on {data.name or data}/{name}"
