"""`diagnose lr-find`: the learning-rate range test, repeated, with a suggestion and the rule behind it."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from diagnose import options as opt
from diagnose.exceptions import UsageError

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
    trust_settings: opt.TrustSettings = False,
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
    from diagnose.io.settings import parse_arch_kwargs, resolve

    # Options not typed come from DATA/diagnose.toml, then [tool.diagnose] in pyproject.toml.
    settings = resolve(data, trust_settings=trust_settings, arch=arch, arch_kwargs=parse_arch_kwargs(arch_kwargs), label_column=label_column,
                       image_size=opt.parse_image_size(image_size), mean=opt.parse_floats(mean, "--mean"),
                       std=opt.parse_floats(std, "--std"))
    arch, kwargs = settings.get("arch"), settings.get("arch_kwargs")
    if model is None and arch is None:
        raise UsageError("MODEL: expected a model file or --arch, got neither; pass one")
    target = None if no_plot else (out or Path("lr-find.png"))
    if target is not None:
        from diagnose.io.outputs import check_target, refuse_inputs

        if target.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise UsageError(f"--out {target}: expected a .png, .svg or .pdf file, got {target.suffix or 'no extension'}; name it lr.png")
        refuse_inputs(target, [model, data])
        check_target(target)
    from diagnose import api
    from diagnose.exceptions import ArgumentError

    try:
        res = api.lr_find(
            model, data, arch=arch, arch_kwargs=kwargs, trust_pickle=trust_pickle, app_dir=app_dir, split=split,
            optimizer=optimizer.value, momentum=momentum, weight_decay=weight_decay, start=start, end=end, steps=steps,
            batch_size=batch_size, repeats=repeats, seed=seed, device=device.value, label_column=settings.get("label_column"),
            image_size=settings.get("image_size"), mean=settings.get("mean"), std=settings.get("std"), show_progress=not json_out,
        )
    except ArgumentError as exc:
        if exc.argument == "model":
            raise UsageError(f"{model}: {exc.detail.replace('an arch', '--arch').replace('the arch', '--arch')}") from None
        if exc.argument in ("start", "end", "batch_size"):  # the API names its arguments; here they are flags
            words = exc.as_flag("--" + exc.argument.replace("_", "-"))
            for api_word, flag in (("start=", "--start "), ("end=", "--end "), ("below end ", "below --end "),
                                   ("batch_size", "--batch-size")):
                words = words.replace(api_word, flag)
            raise UsageError(words) from None
        if exc.argument != "split":
            raise
        from diagnose.io.splits import missing_split

        raise missing_split(data, split, "to sweep on") from None
    where, _, factory = (arch or "").rpartition(":")
    what = model.name if model is not None else f"{Path(where).name}:{factory}"
    title = f"lr-find: {what}, {optimizer.value}, {repeats} x {steps} steps of {batch_size} on {data.name or data}/{res.split}"
    kept = None
    if target is not None:
        from diagnose.plots.curves import save_figure
        from diagnose.plots.lrfind import lrfind_figure

        kept = save_figure(lrfind_figure(res, title=title), str(target))
    from diagnose.render.lrfind import print_result

    print_result(res, title, json_out=json_out, figure=target, kept=kept)

