"""`diagnose report` output: one self-contained HTML page (inline CSS, figures inline, no scripts) and
the same content as JSON.

Every string that comes from a user's file (paths, class names, sheet notes, log names) goes through
`html.escape`; nothing here reads files or imports matplotlib or torch.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagnose import __version__
from diagnose.core.gaps import SPLITS, ClassRow, GapReport
from diagnose.render.gaps import (
    GAP_NAMES,
    LEVEL_NAMES,
    class_headers,
    class_rows,
    drivers,
    level_rows,
    per_class_json,
    verdict_lines,
)

if TYPE_CHECKING:
    from diagnose.core.checks import Check
    from diagnose.core.hints import RunResult
    from diagnose.core.tally import SheetTally
    from diagnose.render.tally import TallyContext

# The marker `diagnose report` looks for before replacing a file: a page it wrote itself.
GENERATOR = f"diagnose {__version__}"
GENERATOR_MARK = '<meta name="generator" content="diagnose'

# Classes listed on the page; more are in the JSON (a 1,000-class table is not something to read).
MAX_CLASS_ROWS = 25

# What produces each section, for the line shown when a section has no input.
SECTION_SOURCES: dict[str, str] = {
    "gaps": "run `diagnose gaps MODEL DATA` first (or pass --workdir where it saved manifest.json)",
    "compare": "pass --baseline OLD_WORKDIR to compare this run with an earlier one",
    "tally": "pass --sheet error_analysis.csv (written by `diagnose errors`, marked by you)",
    "curves": "pass --log run.log (any log `diagnose curves` reads)",
    "data": "pass --data DIR to check the splits (`diagnose data`)",
}
SECTION_TITLES: dict[str, str] = {
    "gaps": "Bias, variance and data mismatch",
    "compare": "Compared with the baseline",
    "tally": "Error analysis",
    "curves": "Training curves",
    "data": "Data checks",
}


@dataclass
class GapsSection:
    report: GapReport
    manifest: dict[str, Any]
    manifest_path: str
    class_rows: list[ClassRow] | None = None
    notes: list[str] = field(default_factory=list)  # staleness and per-class notes
    # train_dev and dev confusion matrices (plots.confusion): wide and phone-width PNGs, grown cells
    confusion_png: bytes | None = None
    confusion_png_narrow: bytes | None = None
    confusion_splits: tuple[str, ...] = ()
    grown: list[tuple[str, str, float, float, int]] = field(default_factory=list)


@dataclass
class CompareSection:
    comparison: Any  # core.compare.Comparison: baseline (old) -> this run (new)
    baseline: str
    current: str


@dataclass
class TallySection:
    tally: SheetTally
    ctx: TallyContext
    contact_png: bytes | None = None  # the sheet's contact sheet (`diagnose errors` writes <sheet>.png)
    contact_name: str | None = None
    contact_png_narrow: bytes | None = None  # the same tiles two to a row, for a phone


@dataclass
class CurvesSection:
    results: list[RunResult]
    labels: list[str]
    figure_png: bytes | None
    notes: list[str] = field(default_factory=list)
    figure_png_narrow: bytes | None = None  # the same figure 430 px wide, for a phone


@dataclass
class DataSection:
    checks: list[Check]
    verdicts: list[dict[str, str]]
    title: str


@dataclass
class ReportContent:
    created: str  # UTC, ISO 8601
    command: str  # the command line that made it, for the footer
    gaps: GapsSection | None = None
    compare: CompareSection | None = None
    tally: TallySection | None = None
    curves: CurvesSection | None = None
    data: DataSection | None = None

    def missing(self) -> dict[str, str]:
        """Section -> the line saying what produces it, for each section without input."""
        return {k: SECTION_SOURCES[k] for k in SECTION_SOURCES if getattr(self, k) is None}


# --------------------------------------------------------------------------- summary


def summary(content: ReportContent) -> dict[str, Any]:
    """The headline: one verdict sentence, the top advice, and one line per other section."""
    verdict = None
    advice: list[str] = []
    if content.gaps is not None:
        verdict = verdict_lines(content.gaps.report)[0].removeprefix("Verdict: ")
        advice = list(content.gaps.report.verdict.advice)
    lines: list[str] = []
    if content.curves is not None:
        for label, r in zip(content.curves.labels, content.curves.results, strict=True):
            warns = [h.id for h in r.hints if h.severity == "warn"]
            if warns:
                lines.append(f"Curves of {label}: {', '.join(warns)}.")
            else:
                lines.append(f"Curves of {label}: no warning.")
    if content.compare is not None:
        from diagnose.render.compare import headline

        lines.append(f"Against the baseline: {headline(content.compare.comparison)}")
    if content.tally is not None:
        t = content.tally.tally
        if t.first is None:
            lines.append("Error analysis: no category is marked yet.")
        else:
            lead = t.categories[0]
            test = t.leader_test
            tied = test is not None and not test.distinguishable
            line = f"Error analysis: {t.first} leads ({lead.count} of {t.rows} rows"
            line += f", at most {lead.ceiling * 100:.1f} pts of the error)" if lead.ceiling is not None else ")"
            line += f", tied with {', '.join(t.tied_with_first)}." if tied else "."
            lines.append(line)
    if content.data is not None:
        from diagnose.core.checks import worst_status

        status = worst_status(content.data.checks)
        groups = [(st, [c.id for c in content.data.checks if c.status == st]) for st in ("fail", "warn")]
        flagged = "; ".join(f"{st} {', '.join(ids)}" for st, ids in groups if ids)
        lines.append(f"Data checks: {flagged}." if flagged else f"Data checks: {status}.")
    return {"verdict": verdict, "top_advice": advice[0] if advice else None, "advice": advice,
            "do_first": do_first(content), "sections": lines}


def _lead_action(lead: str, problem: str | None) -> str:
    """What to do about the category that leads the tally, given the gap that dominates."""
    key = lead.lower().replace("-", "").replace("_", "").replace(" ", "")
    if "label" in key:
        return f"fix the labels of the items marked {lead}; they cap what any change to the model can show"
    if "confus" in key:
        return "add training items that tell the most-confused classes apart"
    if problem == "data_mismatch":
        return f"add {lead} training data (collect or synthesize items like them)"
    if problem == "variance":
        return f"add or augment training data with {lead} items, and regularize"
    if problem == "avoidable_bias":
        return f"train a bigger model or longer, and check it on the {lead} items"
    if problem == "dev_overfit":
        return "get a bigger dev set before tuning further"
    return f"work on the {lead} items first"


def do_first(content: ReportContent) -> str | None:
    """One line from what the page knows: the gap that dominates and, when a marked sheet is there,
    the category that leads its errors. Without a sheet, the gap's first advice."""
    problem = content.gaps.report.verdict.problem if content.gaps is not None else None
    head = f"{GAP_NAMES[problem]} dominates" if problem else None
    t = content.tally.tally if content.tally is not None else None
    if t is not None and t.first is not None:
        lead = t.categories[0]
        split = content.tally.ctx.split or "sampled"  # type: ignore[union-attr]
        names = [t.first, *t.tied_with_first]
        who = f"{names[0]} leads" if len(names) == 1 else f"{' and '.join(names)} lead (tied)"
        ceiling = f" (ceiling {lead.ceiling * 100:.1f} pts)" if lead.ceiling is not None else ""
        actions = list(dict.fromkeys(_lead_action(name, problem) for name in names[:2]))
        line = f"among {split} errors {who}{ceiling}: {'; '.join(actions)}"
        return f"{head}; {line}." if head else line[0].upper() + line[1:] + "."
    if content.gaps is not None:
        advice = list(content.gaps.report.verdict.advice)
        if advice:
            return f"{head}: {advice[0][0].lower()}{advice[0][1:]}" if head else advice[0]
    return None


# --------------------------------------------------------------------------- JSON


def gaps_json(section: GapsSection) -> dict[str, Any]:
    """`diagnose gaps --json` of the saved run (with per_class when predictions were there), plus where
    it came from: the manifest's model, data, created, device."""
    doc: dict[str, Any] = section.report.to_json()
    if section.class_rows is not None:
        doc["per_class"] = per_class_json(section.report, section.class_rows)
    m = section.manifest
    doc["source"] = {
        "manifest": section.manifest_path,
        "created": m.get("created"),
        "diagnose_version": m.get("diagnose_version"),
        "model": m.get("model"),
        "data": m.get("data"),
        "device": m.get("device"),
        "precision": m.get("precision"),
        "max_items": m.get("max_items"),
    }
    doc["report_notes"] = list(section.notes)
    return doc


def to_json(content: ReportContent, out: str | None) -> dict[str, Any]:
    from diagnose.core.checks import checks_document, worst_status
    from diagnose.render import curves as rc
    from diagnose.render import tally as rt

    doc: dict[str, Any] = {
        "generator": GENERATOR,
        "created": content.created,
        "html": out,
        "summary": summary(content),
        "gaps": gaps_json(content.gaps) if content.gaps else None,
        "compare": ({**content.compare.comparison.to_json(), "baseline": content.compare.baseline}
                    if content.compare else None),
        "tally": rt.to_json(content.tally.tally, content.tally.ctx) if content.tally else None,
        "curves": None,
        "data": None,
        "missing": content.missing(),
    }
    if content.curves is not None:
        doc["curves"] = rc.to_json(content.curves.results, None)
        doc["curves"]["figure"] = "embedded" if content.curves.figure_png else None
    if content.data is not None:
        checks = content.data.checks
        doc["data"] = checks_document(checks, status=worst_status(checks), verdicts=list(content.data.verdicts))
    return doc


# --------------------------------------------------------------------------- HTML pieces


def _e(value: object) -> str:
    """Escape text for HTML, quotes included (safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, numeric: Sequence[int] = (),
           cls: str = "") -> str:
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td{" class=num" if i in numeric else ""}>{_e(v)}</td>' for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _status(status: str) -> str:
    return f'<span class="st st-{_e(status)}">{_e(status)}</span>'


def _png(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _picture(wide: bytes, narrow: bytes | None, alt: str) -> str:
    """An image with a variant for phones (screens up to 640 px) when there is one."""
    if not narrow:
        return _png(wide, alt)
    b64 = base64.b64encode(narrow).decode("ascii")
    return f'<picture><source media="(max-width: 640px)" srcset="data:image/png;base64,{b64}">{_png(wide, alt)}</picture>'


def _confusion_html(section: GapsSection) -> list[str]:
    if not section.confusion_png:
        return []
    splits = " and ".join(LEVEL_NAMES.get(s, s) for s in section.confusion_splits)
    out = ["<h3>Where the errors come from</h3>",
           f"<p class=small>Confusion matrices of {_e(splits)}: each row is a true class, each cell the share of "
           "its items predicted as the column's class. Red boxes: the confusions that grew most.</p>",
           f"<figure>{_picture(section.confusion_png, section.confusion_png_narrow, 'confusion matrices')}</figure>"]
    if section.grown and len(section.confusion_splits) == 2:
        a, b = section.confusion_splits
        items = "".join(
            f"<li>{_e(t)} \u2192 {_e(p)}: {x * 100:.1f}% \u2192 {y * 100:.1f}% ({(y - x) * 100:+.1f} pts, {n} items)</li>"
            for t, p, x, y, n in section.grown
        )
        out.append(f"<p>Grew most from {_e(a)} to {_e(b)}:</p><ol>{items}</ol>")
    return out


def _fmt_level(v: float, metric: str) -> str:
    return f"{v * 100:.1f}%" if metric == "error" else f"{v:.4g}"


def _nice_scale(peak: float) -> tuple[float, float]:
    """(axis end, tick step): the end a little above `peak`, at a multiple of 1, 2 or 5 x 10^k."""
    if not peak > 0:
        return 1.0, 0.25
    raw = peak * 1.05 / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return step * math.ceil(peak * 1.05 / step), step


def _fmt_tick(v: float, metric: str) -> str:
    return f"{v * 100:g}%" if metric == "error" else f"{v:g}"


def levels_svg(report: GapReport, *, narrow: bool = False) -> str:
    """Horizontal bars: each level's error with its 95% interval as a whisker, gaps labelled between.

    Drawn as inline SVG (no matplotlib): it prints sharply and stays a few KB. `narrow`: 360 units
    wide, drawn at about its own size on a phone so its 12 px text stays 12 px (the page shows one
    or the other by screen width).
    """
    levels: list[tuple[str, float, tuple[float, float] | None]] = []
    if report.human_error is not None:
        levels.append((LEVEL_NAMES["human"], report.human_error, None))
    for s in SPLITS:
        r = report.splits.get(s)
        if r is not None:
            levels.append((LEVEL_NAMES[s], r.error, r.ci))
    finite = [v for _, v, ci in levels for v in ((v,) + (ci or ())) if math.isfinite(v)]
    if not levels or not finite:
        return ""
    top, step = _nice_scale(max(finite))
    left, width, row_h, right = (84, 150, 30, 126) if narrow else (96, 440, 30, 150)
    height = row_h * len(levels) + 26
    parts = [
        f'<svg class="levels {"narrow" if narrow else "wide"}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + right} {height}" '
        f'width="{left + width + right}" height="{height}" role="img" aria-label="error by level with 95% intervals">'
    ]
    ticks = round(top / step)
    for k in range(ticks + 1):
        x = left + width * k / ticks
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 20}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" class="tick">{_e(_fmt_tick(step * k, report.metric))}</text>')
    problem = report.verdict.problem
    for i, (name, v, ci) in enumerate(levels):
        y = 6 + i * row_h
        w = max(0.0, width * v / top) if math.isfinite(v) else 0.0
        parts.append(f'<text x="{left - 8}" y="{y + 15}" class="lab">{_e(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="16" class="bar{" human" if ci is None else ""}"/>')
        if ci is not None and all(math.isfinite(c) for c in ci):
            x0, x1 = left + width * max(ci[0], 0.0) / top, left + width * ci[1] / top
            parts.append(f'<line x1="{x0:.1f}" y1="{y + 11}" x2="{x1:.1f}" y2="{y + 11}" class="ci"/>')
            for x in (x0, x1):
                parts.append(f'<line x1="{x:.1f}" y1="{y + 6}" x2="{x:.1f}" y2="{y + 16}" class="ci"/>')
        end = left + w
        if ci is not None and math.isfinite(ci[1]):
            end = max(end, left + width * ci[1] / top)
        parts.append(f'<text x="{end + 6:.1f}" y="{y + 15}" class="val">{_e(_fmt_level(v, report.metric))}</text>')
    # The verdict's gap as a bracket between its two levels.
    if problem is not None:
        names = [n for n, _, _ in levels]
        gap = report.gaps.get(problem)
        lo_name, hi_name = (LEVEL_NAMES[gap.lower], LEVEL_NAMES[gap.upper]) if gap is not None else ("", "")
        if gap is not None and lo_name in names and hi_name in names:
            i0, i1 = names.index(lo_name), names.index(hi_name)
            x = left + width + 14
            y0, y1 = 6 + i0 * row_h + 11, 6 + i1 * row_h + 11
            parts.append(f'<path d="M{x - 6},{y0} H{x} V{y1} H{x - 6}" class="gapmark"/>')
            parts.append(f'<text x="{x + 4}" y="{(y0 + y1) / 2 + 4:.1f}" class="gaplab">{_e(GAP_NAMES[problem])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def shown_classes(report: GapReport, rows: list[ClassRow], limit: int = MAX_CLASS_ROWS) -> tuple[list[ClassRow], str | None]:
    """At most `limit` classes for the page (all of them are in the JSON): those adding most to the
    verdict's gap, or with the highest error in the last split when the verdict is not a class gap."""
    if len(rows) <= limit:
        return rows, None
    problem = report.verdict.problem
    last = [s for s in SPLITS if s in report.splits][-1]
    if problem in ("variance", "data_mismatch", "dev_overfit"):
        def key(r: ClassRow) -> float:
            return -(r.contribution.get(problem) or 0.0)
        why = f"the {limit} classes that add most to {GAP_NAMES[problem]}"
    else:
        def key(r: ClassRow) -> float:
            return -(r.error.get(last) or 0.0)
        why = f"the {limit} classes with the highest {LEVEL_NAMES[last]} error"
    picked = sorted(sorted(rows, key=key)[:limit], key=lambda r: r.index)
    return picked, f"Showing {why}, of {len(rows)}; every class is in the --json output."


def _short_sha(sha: object) -> str:
    return f"{sha[:12]}…" if isinstance(sha, str) and len(sha) > 12 else str(sha or "")


def _gaps_html(section: GapsSection) -> str:
    from diagnose.render.gaps import baseline_lines, doubt_lines, level_headers

    r = section.report
    m = section.manifest
    headers = level_headers(r.metric, r)
    out = [levels_svg(r), levels_svg(r, narrow=True), _table(headers, level_rows(r), numeric=(1, 2, 3, 5), cls="gaps")]
    out += [f"<p class=small>{_e(line)}</p>" for line in baseline_lines(r)]
    doubts = doubt_lines(r)
    if doubts:
        out.append(f"<p>{_e(doubts[0])}</p><ul>" + "".join(f"<li>{_e(d[2:])}</li>" for d in doubts[1:]) + "</ul>")
    out.append(f'<p class="verdict">{_e(verdict_lines(r)[0])}</p>')
    out.append("<ol>" + "".join(f"<li>{_e(a)}</li>" for a in r.verdict.advice) + "</ol>")
    if section.class_rows is not None:
        out += _confusion_html(section)
        out.append("<h3>Which classes drive each gap</h3>")
        out.append("<p class=small>Error of each class in each split, and each class's share of each gap "
                   "in percentage points (the shares add up to the gap).</p>")
        shown, note = shown_classes(r, section.class_rows)
        headers = class_headers(r, short=True)
        rows = class_rows(r, shown, with_n=False)
        if note:
            out.append(f"<p class=small>{_e(note)}</p>")
        out.append(_table(headers, rows, numeric=tuple(range(1, len(headers))), cls="classes"))
        for gap, items in drivers(r, section.class_rows).items():
            g = r.gaps.get(gap)
            if g is not None and g.significant and items:
                named = ", ".join(f"{d['class']} ({d['contribution'] * 100:+.1f})" for d in items)
                out.append(f"<p>{_e(GAP_NAMES[gap])} is driven most by classes {_e(named)}.</p>")
    notes = list(r.notes) + list(section.notes)
    if notes:
        out.append("<ul class=notes>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    # Where the numbers come from: enough to reproduce them, or to see they are stale.
    model = m.get("model") or {}
    data = m.get("data") or {}
    prov = [
        ("evaluated", m.get("created") or ""),
        ("model", f"{model.get('path', '')} ({model.get('format', '')})"),
        ("model sha256" if model.get("sha256") else "model fingerprint", model.get("sha256") or model.get("fingerprint") or ""),
        ("data", data.get("path", "")),
    ]
    for name, s in (data.get("splits") or {}).items():
        if isinstance(s, dict):
            prov.append((f"  {name}", f"{s.get('path', '')} ({s.get('format', '')}, {s.get('n', '')} items"
                         + (f", sha256 {_short_sha(s.get('sha256'))})" if s.get("sha256") else
                            f", fingerprint {_short_sha(str(s['fingerprint']).split(':')[-1])})" if s.get("fingerprint") else ")")))
    extra = [f"{k} {m[k]}" for k in ("device", "precision") if m.get(k)]
    if m.get("max_items"):
        extra.append(f"--max-items {m['max_items']} (seed {m.get('seed', 0)})")
    if extra:
        prov.append(("run", ", ".join(str(x) for x in extra)))
    prov.append(("manifest", section.manifest_path))
    prov_rows = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in prov)
    out.append(f'<details open><summary>Where these numbers come from</summary><table class="prov">{prov_rows}</table></details>')
    return "\n".join(out)


def _compare_html(section: CompareSection) -> str:
    from diagnose.render import compare as rc

    cmp = section.comparison
    out = [f"<p>Baseline {_code(section.baseline)} (old) against {_code(section.current)} (new).</p>",
           f'<p class="verdict">{_e(rc.headline(cmp))}</p>',
           _table(rc.SPLIT_HEADERS[:-1] + ("verdict",), rc.split_rows(cmp), numeric=(1, 2, 3, 4, 5, 6), cls="compare"),
           f"<p class=small>{_e(rc.method_line(cmp))}</p>",
           "<h3>Gaps before and after</h3>",
           _table(rc.GAP_HEADERS, rc.gap_rows(cmp), numeric=(1, 2, 3))]
    if cmp.per_class:
        which = rc.class_split(cmp, None)
        rows = rc.class_rows(cmp, which)
        out.append(f"<h3>Per class on {_e(LEVEL_NAMES.get(which, which))}</h3>")
        if len(rows) > MAX_CLASS_ROWS:
            # The classes that changed most either way; all of them are in the JSON.
            order = sorted(range(len(rows)), key=lambda k: -abs(cmp.per_class[which][k].change.change))
            keep = sorted(order[:MAX_CLASS_ROWS])
            out.append(f"<p class=small>The {MAX_CLASS_ROWS} classes whose error changed most, of {len(rows)}; "
                       "every class is in the --json output.</p>")
            rows = [rows[k] for k in keep]
        out.append(_table(rc.CLASS_HEADERS, rows, numeric=(1, 2, 3, 4, 5, 6)))
    if cmp.notes:
        out.append("<ul class=notes>" + "".join(f"<li>{_e(n)}</li>" for n in cmp.notes) + "</ul>")
    return "\n".join(out)


def _code(value: object) -> str:
    return f"<code>{_e(value)}</code>"


def _tally_html(section: TallySection) -> str:
    from diagnose.render.tally import HEADERS, findings, headline, rows

    t, ctx = section.tally, section.ctx
    headers = [h for h in HEADERS if t.error is not None or not h.startswith("ceiling")]
    body = [r[: len(headers)] for r in rows(t)]
    body.append(["(no mark)", str(t.unmarked), *[""] * (len(headers) - 2)])
    out = [f"<p>{_e(headline(t, ctx))}</p>", _table(headers, body, numeric=tuple(range(1, len(headers))))]
    out.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in findings(t, ctx)) + "</ul>")
    if section.contact_png:
        picture = _picture(section.contact_png, section.contact_png_narrow, "the sampled errors")
        out.append(f"<figure>{picture}<figcaption class=small>"
                   f"{_e(section.contact_name)}: the sampled errors; tile numbers are the sheet's column n.</figcaption></figure>")
    return "\n".join(out)


def _curves_html(section: CurvesSection) -> str:
    from diagnose.render.curves import FINDING_HEADERS, finding_rows, run_header

    out = []
    if section.figure_png:
        out.append(f'<figure>{_picture(section.figure_png, section.figure_png_narrow, "training curves")}</figure>')
    for label, r in zip(section.labels, section.results, strict=True):
        out.append(f"<h3>{_e(label)}</h3><p class=small>{_e(run_header(r.log))}</p>")
        out.append(_table(FINDING_HEADERS, finding_rows(r.hints), cls="findings"))
    if section.notes:
        out.append("<ul class=notes>" + "".join(f"<li>{_e(n)}</li>" for n in section.notes) + "</ul>")
    return "\n".join(out)


def _data_html(section: DataSection) -> str:
    from diagnose.render.checks import _summary

    rows = "".join(
        f"<tr><td>{_status(c.status)}</td><td><code>{_e(c.id)}</code></td><td>{_e(c.evidence)}</td></tr>"
        for c in section.checks
    )
    out = [f"<p>{_e(section.title.removeprefix('diagnose data: '))}</p>",
           f"<table><thead><tr><th>status</th><th>check</th><th>evidence</th></tr></thead><tbody>{rows}</tbody></table>"]
    advised = [c for c in section.checks if c.status in ("warn", "fail") and c.advice]
    if advised:
        out.append("<ul>" + "".join(f"<li><b>{_e(c.id)}</b> ({_status(c.status)}): {_e(c.advice)}</li>" for c in advised) + "</ul>")
    if section.verdicts:
        vrows = "".join(f"<tr><td>{_e(v['pair'])}</td><td>{_status(v['status'])}</td><td>{_e(v['verdict'])}</td></tr>"
                        for v in section.verdicts)
        out.append(f"<h3>Split pairs</h3><table><thead><tr><th>pair</th><th>status</th><th>verdict</th></tr></thead>"
                   f"<tbody>{vrows}</tbody></table>")
    out.append(f"<p><b>{_e(_summary(section.checks))}</b></p>")
    return "\n".join(out)


CSS = """
:root { --fg:#1d2127; --muted:#5b6470; --line:#d8dde3; --accent:#2563a8; --warn:#a15c00; --fail:#b3261e; --pass:#1e7d3a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg);
       max-width: 1040px; margin: 2em auto; padding: 0 1.2em; overflow-wrap: break-word; }
h1, p, li, figcaption, footer { overflow-wrap: anywhere; }
.tw { overflow-x: auto; max-width: 100%; margin: .6em 0; }  /* a wide table scrolls in its own box */
.tw > table { margin: 0; }
h1 { font-size: 1.6em; margin: 0 0 .2em; } h2 { font-size: 1.25em; margin: 1.8em 0 .5em; border-bottom: 2px solid var(--line); padding-bottom: .2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
.meta, .small { color: var(--muted); font-size: .9em; }
.summary { border: 1px solid var(--line); border-left: 5px solid var(--accent); background: #f5f8fc; padding: .7em 1.1em; margin: 1em 0; }
.summary .verdict { font-size: 1.1em; font-weight: 600; margin: .2em 0 .4em; }
.summary ul { margin: .3em 0; padding-left: 1.2em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid var(--line); padding: .28em .55em; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.findings td:nth-child(4), table.findings td:nth-child(5) { min-width: 16em; }
table.prov th { background: none; font-weight: 600; white-space: pre; }
code { font: .92em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table.prov code { word-break: break-all; } td > code { white-space: nowrap; } table.prov td > code { white-space: normal; }
.verdict { font-weight: 600; }
.st { font-weight: 700; text-transform: uppercase; font-size: .85em; }
.st-pass { color: var(--pass); } .st-warn { color: var(--warn); } .st-fail { color: var(--fail); } .st-skip { color: var(--muted); }
.missing { color: var(--muted); }
.notes { color: var(--muted); font-size: .92em; }
figure { margin: .6em 0; } img { max-width: 100%; height: auto; border: 1px solid var(--line); }
svg.levels { max-width: 100%; height: auto; font: 12px sans-serif; display: block; }
svg.levels.narrow { display: none; }
@media (max-width: 640px) {
  body { margin: 1em auto; padding: 0 .75em; }
  svg.levels.wide { display: none; } svg.levels.narrow { display: block; width: 100%; }
}
svg .bar { fill: #8fb3dc; } svg .bar.human { fill: #c9ced6; } svg .ci { stroke: #1d2127; stroke-width: 1.4; }
svg .grid { stroke: #e6e9ed; } svg .tick { fill: #5b6470; text-anchor: middle; font-size: 11px; }
svg .lab { text-anchor: end; fill: #1d2127; } svg .val { fill: #1d2127; }
svg .gapmark { fill: none; stroke: #b3261e; stroke-width: 2; } svg .gaplab { fill: #b3261e; font-weight: 600; }
details summary { cursor: pointer; color: var(--muted); }
footer { margin-top: 2.5em; color: var(--muted); font-size: .85em; border-top: 1px solid var(--line); padding-top: .6em; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; } table, figure, svg, .summary { break-inside: avoid; }
  details summary { display: none; } a { color: inherit; text-decoration: none; }
}
"""


def render_html(content: ReportContent) -> str:
    """The whole page. Sections without input become one line saying which command produces them."""
    s = summary(content)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{_e(GENERATOR)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(_title(content))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(_title(content))}</h1>",
        f'<p class="meta">Generated {_e(content.created)} by {_e(GENERATOR)}</p>',
        '<section class="summary"><h2 style="border:0;margin:.2em 0">Summary</h2>',
    ]
    if s["verdict"]:
        parts.append(f'<p class="verdict">{_e(s["verdict"])}</p>')
    else:
        parts.append(f'<p class="missing">No gap verdict: {_e(SECTION_SOURCES["gaps"])}.</p>')
    if s["do_first"]:
        parts.append(f"<p><b>Do first:</b> {_e(s['do_first'])}</p>")
    if s["sections"]:
        parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in s["sections"]) + "</ul>")
    parts.append("</section>")
    builders: dict[str, Callable[[Any], str]] = {"gaps": _gaps_html, "compare": _compare_html, "tally": _tally_html, "curves": _curves_html, "data": _data_html}
    missing = content.missing()
    for key, build in builders.items():
        section = getattr(content, key)
        parts.append(f'<section id="{key}"><h2>{_e(SECTION_TITLES[key])}</h2>')
        if section is None:
            parts.append(f'<p class="missing">Not in this report: {_e(missing[key])}.</p>')
        else:
            parts.append(build(section))
        parts.append("</section>")
    parts.append(f"<footer>Made with <code>{_e(content.command)}</code> · {_e(GENERATOR)} · "
                 "intervals are 95% (Wilson for rates, Newcombe for their differences).</footer>")
    parts.append("</body></html>")
    return _finish("\n".join(parts) + "\n")


_TAG = re.compile(r"(<[^>]*>)")
_CODE = re.compile(r"`([^`<>]+)`")


def _finish(page: str) -> str:
    """Every table in a box that scrolls sideways on its own (the page never does); text written as
    `code` in advice and findings set as <code>, and no backtick left as such (outside <style>)."""
    page = page.replace("<table", '<div class="tw"><table').replace("</table>", "</table></div>")
    pieces = _TAG.split(page)
    inside: str | None = None
    for k, piece in enumerate(pieces):
        if k % 2:  # a tag
            name = piece[1:].split(None, 1)[0].rstrip(">").lower() if len(piece) > 1 else ""
            if name in ("title", "style"):
                inside = name
            elif name in ("/title", "/style"):
                inside = None
            continue
        if "`" not in piece or inside == "style":
            continue
        text = piece if inside == "title" else _CODE.sub(r"<code>\1</code>", piece)
        pieces[k] = text.replace("`", "&#96;") if inside != "title" else text.replace("`", "")
    return "".join(pieces)


def _title(content: ReportContent) -> str:
    if content.gaps is not None:
        model = (content.gaps.manifest.get("model") or {}).get("path")
        if model:
            return f"diagnose report: {str(model).replace(chr(92), '/').rsplit('/', 1)[-1]}"
    return "diagnose report"
