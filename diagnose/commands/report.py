"""`diagnose report`: gather what the other commands found into one self-contained HTML page to share.

Options in, `reporting.build_content`, the page and a short summary out. The sections are built in
`diagnose.reporting`. Imports torch only for `--data`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from diagnose import options as opt
from diagnose.exceptions import UsageError

NAME = "report"
HELP = (
    "Write one self-contained HTML report to open and share: the gap table, verdict and advice of the "
    "last `diagnose gaps` run, the error-analysis tally (--sheet), training curves and their findings "
    "(--log) and data checks (--data)."
)


def command(
    workdir: Path = typer.Option(Path(".diagnose"), "--workdir", help="Where `diagnose gaps` saved manifest.json and the predictions."),
    log: list[Path] = typer.Option([], "--log", "-l", help="A training log or TensorBoard folder for the curves section (repeatable).", show_default=False),
    sheet: Path | None = typer.Option(None, "--sheet", help="A marked error-analysis sheet (from `diagnose errors`) to tally."),
    data: Path | None = typer.Option(None, "--data", help="Check the splits in this DATA folder (`diagnose data`; loads torch)."),
    out: Path = typer.Option(Path("diagnose-report.html"), "--out", "-o", help="The HTML file to write."),
    classes: int | None = typer.Option(None, "--classes", min=2, help="Number of classes: checks the logged loss against chance, ln(C)."),
    smooth: opt.Smooth = None,
    label_column: opt.LabelColumn = opt.LABEL_COLUMN,
    image_size: str | None = typer.Option(None, "--image-size", help="Resize images to H,W before the data checks (with --data)."),
    force: bool = typer.Option(False, "--force", help="Replace an --out file that diagnose did not write (a .bak copy is kept)."),
    json_out: bool = typer.Option(False, "--json", help="Also print the report's content as JSON on stdout."),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="An earlier run (its gaps --workdir or predictions folder) to compare this one with: per split, per gap, per class."
    ),
    open_page: bool = typer.Option(False, "--open", help="Open the page in the default web browser once written."),
) -> None:
    from diagnose.io.manifest import MANIFEST, read_manifest

    manifest = read_manifest(workdir)
    if manifest is None and not (log or sheet or data or baseline):
        raise UsageError(
            f"{workdir / MANIFEST}: expected the manifest of a `diagnose gaps` run, got no such file; "
            "run `diagnose gaps MODEL DATA` first, or pass --log, --sheet or --data"
        )
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {out}: expected an .html file, got {out.suffix or 'no extension'}; "
                         "name it report.html (print it to PDF from the browser)")
    inputs = [*log, *([sheet] if sheet else [])]
    if out.exists() and any(out.resolve() == p.resolve() for p in inputs if p.exists()):
        raise UsageError(f"--out {out}: expected a new HTML file, got one of the inputs; choose another name")
    from diagnose.reporting import build_content, guard_output, open_in_browser

    backup = guard_output(out, force)

    content = build_content(
        workdir, manifest, log=log, sheet=sheet, data=data, out=out, classes=classes, smooth=smooth,
        label_column=label_column, image_size=image_size, baseline=baseline, show_progress=not json_out,
    )

    from diagnose.io.atomic import atomic_write_text
    from diagnose.render.report import render_html, summary, to_json

    page = render_html(content)
    from diagnose.io.outputs import write_error

    try:
        atomic_write_text(out, page)
    except OSError as exc:  # disk full, a read-only disk
        raise write_error(exc, out) from None
    if open_page:
        open_in_browser(out)
    if json_out:
        from diagnose.render import print_json

        doc = to_json(content, str(out))
        doc["backup"] = backup
        print_json(doc)
        return
    included = [k for k in ("gaps", "compare", "tally", "curves", "data") if getattr(content, k) is not None]
    lines = [f"Wrote {out} ({len(page.encode('utf-8')) / 1024:,.0f} KB; sections: {', '.join(included)})"]
    if backup:
        lines.append(f"The file it replaced was kept as {backup}")
    s = summary(content)
    if s["verdict"]:
        lines.append(f"Verdict: {s['verdict']}")
    if s["do_first"]:
        lines.append(f"Do first: {s['do_first']}")
    lines += list(s["sections"])
    for key, where in content.missing().items():
        lines.append(f"Not included: {key}; {where}")
    from diagnose.render import safe_text

    # Log names, sheet categories and class names come from the input: no control character reaches the terminal.
    sys.stdout.write(safe_text("\n".join(lines)) + "\n")
