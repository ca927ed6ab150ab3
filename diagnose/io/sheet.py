"""Error-analysis sheets: the CSV `diagnose errors` writes and `diagnose tally` reads back.

Written as UTF-8 with a byte-order mark, comma-separated, CRLF line ends (RFC 4180), fields quoted
only where needed. The BOM is what makes Excel read the file as UTF-8 when it is double-clicked
(without it Excel uses the Windows ANSI code page and class names like "café" or a check mark turn
into mojibake); LibreOffice Calc and Google Sheets recognise the BOM and drop it. Read back: sheets
as spreadsheets save them - with or without a BOM, UTF-16 ("Unicode text"), Windows-1252 (Excel's
plain "CSV"), CRLF or LF, `,` `;` or tab delimiters, quoted fields, columns reordered, renamed or
added, a "sum" row at the bottom.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diagnose.exceptions import SheetError
from diagnose.io.atomic import atomic_open

if TYPE_CHECKING:
    from diagnose.core.tally import SheetTally

# Columns diagnose writes before the categories; everything else except the note is a category.
FIXED_COLUMNS: tuple[str, ...] = (
    "n",
    "split",
    "index",
    "id",
    "label",
    "pred",
    "confidence",
    "p_label",
    "loss",
    "suspect_mislabel",
    "label_issue_score",
)
NOTE_COLUMN = "note"
# The error-analysis spreadsheet of Ng's "Machine Learning Yearning" (ch. 15-16): blurry, a
# confusable class, mislabeled (+ other, for what fits none of them).
DEFAULT_CATEGORIES: tuple[str, ...] = ("blurry", "confusable", "mislabeled", "other")

# Header spellings a person (or a spreadsheet) may use for the fixed columns.
_ALIASES: dict[str, str] = {
    "number": "n",
    "#": "n",
    "no.": "n",
    "nr": "n",
    "row": "n",
    "true": "label",
    "true_label": "label",
    "predicted": "pred",
    "prediction": "pred",
    "suspect": "suspect_mislabel",
    "notes": NOTE_COLUMN,
    "comment": NOTE_COLUMN,
    "comments": NOTE_COLUMN,
    "remark": NOTE_COLUMN,
    "remarks": NOTE_COLUMN,
}
_SUM_WORDS = frozenset({"sum", "sums", "total", "totals", "\u03a3", "summe", "somme", "suma", "totale"})
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _key(header: str) -> str:
    """A header compared the way a person means it: case, spaces and dashes do not matter."""
    key = "_".join(header.strip().lower().replace("-", " ").split())
    return _ALIASES.get(key, key)


def is_reserved(name: str) -> bool:
    """True when a header with this name is read back as one of the sheet's own columns (a
    FIXED_COLUMNS name, the note, or an alias of one: "Predicted", "comment"), not a category."""
    key = _key(name)
    return key in FIXED_COLUMNS or key == NOTE_COLUMN


# A text cell starting with one of these is run as a formula by Excel, LibreOffice or Google Sheets
# (CSV injection; OWASP's list: = + - @ TAB CR). A leading apostrophe keeps it text in all three.
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value: str) -> str:
    """Escape a text cell that a spreadsheet would run as a formula. Numbers never reach here."""
    # A value that already starts with apostrophes before a formula character gets one more, so that
    # `unescape_cell` can tell it from an escaped one: the two are exact inverses.
    return "'" + value if value.lstrip("'").startswith(FORMULA_STARTS) else value


def unescape_cell(value: str) -> str:
    """The original of a cell `_safe_text` escaped ("'=cmd" -> "=cmd"); anything else unchanged."""
    return value[1:] if value[:1] == "'" and value.lstrip("'").startswith(FORMULA_STARTS) else value


def format_cell(value: object, digits: int = 4) -> str:
    """One cell: None and NaN empty, floats to `digits` decimals, bools as yes/'' ."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.{digits}f}"
    if isinstance(value, int):
        return str(value)
    if hasattr(value, "item"):  # numpy scalar
        return format_cell(value.item(), digits)
    return _safe_text(str(value))


def write_sheet(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write the sheet atomically: UTF-8 with BOM, comma, CRLF, minimal quoting."""
    with atomic_open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=",", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow([_safe_text(str(c)) for c in columns])
        for row in rows:
            writer.writerow([format_cell(v) for v in row])


def backup(path: Path) -> Path:
    """Copy `path` to `path.bak` (or .bak.1, ...) before it is replaced (io.outputs.backup)."""
    from diagnose.io.outputs import backup as keep

    return keep(path)


@dataclass(frozen=True)
class Sheet:
    """A sheet read back. rows: one dict per data row, keyed by the (de-duplicated) header names."""

    path: Path
    columns: tuple[str, ...]
    categories: tuple[str, ...]
    note_column: str | None
    rows: tuple[dict[str, str], ...]
    split: str | None
    skipped_rows: int  # "sum" / "total" rows at the bottom
    delimiter: str
    encoding: str

    def category_cells(self) -> list[list[str]]:
        return [[row.get(c, "") for c in self.categories] for row in self.rows]

    def notes(self) -> list[str]:
        return [row.get(self.note_column, "") for row in self.rows] if self.note_column else []

    def filled_cells(self) -> int:
        """Category and note cells holding anything: a person's work."""
        cols = list(self.categories) + ([self.note_column] if self.note_column else [])
        return sum(1 for row in self.rows for c in cols if row.get(c, "").strip())


def _decode(path: Path, raw: bytes) -> tuple[str, str]:
    if raw[:4] == b"PK\x03\x04":
        raise SheetError(
            f"{path}: expected a CSV sheet, got a zipped workbook (.xlsx or .ods); "
            "save it as CSV (UTF-8) from the spreadsheet and tally that"
        )
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding
            except UnicodeDecodeError as exc:  # a byte-order mark, then bytes that are not that encoding
                # utf-8-sig counts positions after its mark; utf-16 counts them from the file's start.
                at = exc.start + (len(bom) if encoding == "utf-8-sig" else 0)
                raise SheetError(f"{path}: expected {encoding} text after its byte-order mark, got byte "
                                 f"0x{raw[at]:02x} at offset {at}; save the sheet as CSV UTF-8") from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Excel's plain "CSV (Comma delimited)" is saved in the Windows ANSI code page.
        return raw.decode("cp1252", errors="replace"), "cp1252"


def _delimiter(header_line: str) -> str:
    """The delimiter of the header line: the most frequent of , ; tab outside quotes (ties: comma)."""
    counts: Counter[str] = Counter()
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in ",;\t":
            counts[ch] += 1
    if not counts:
        return ","
    best = max(counts.values())
    return next(d for d in (",", ";", "\t") if counts[d] == best)


def read_sheet(path: Path, *, categories: Sequence[str] | None = None) -> Sheet:
    """Read an error-analysis sheet as a spreadsheet saved it.

    categories: the category columns to use (matched ignoring case, spaces and dashes); by default
    every column that is not one of FIXED_COLUMNS or the note.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        from diagnose.io.paths import require_file

        require_file(path, "an error-analysis sheet (a CSV file)", "pass the sheet diagnose errors wrote", SheetError)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SheetError(
            f"{path}: expected an error-analysis sheet, got no such file; run `diagnose errors` first"
        ) from None
    except IsADirectoryError:
        raise SheetError(f"{path}: expected a CSV file, got a folder; pass the sheet's path") from None
    except OSError as exc:
        raise SheetError(f"{path}: expected a readable file, got {exc.strerror}; check its permissions") from None
    text, encoding = _decode(path, raw)
    if "\x00" in text:
        raise SheetError(f"{path}: expected a CSV text file, got binary data; save the sheet as CSV")
    delimiter = _delimiter(next((ln for ln in text.splitlines() if ln.strip()), ""))
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise SheetError(f"{path}: expected CSV, got {exc}; save the sheet as CSV from the spreadsheet") from None
    records = [r for r in records if any(cell.strip() for cell in r)]
    if not records:  # no bytes, or only blank lines and delimiters (a spreadsheet's empty sheet: ",,,")
        raise SheetError(f"{path}: expected a header row and marked rows, got an empty file; run `diagnose errors`")
    header, body = records[0], records[1:]
    width = max(len(r) for r in records)
    header = header + [""] * (width - len(header))
    body = [r + [""] * (width - len(r)) for r in body]

    names: list[str] = []
    keep: list[int] = []
    seen: Counter[str] = Counter()
    for k, h in enumerate(header):
        h = unescape_cell(h.strip().lstrip("\ufeff")).strip()
        if not h:
            if not any(r[k].strip() for r in body):
                continue  # trailing empty columns spreadsheets leave behind
            h = f"column {k + 1}"
        key = _key(h)
        name = key if key in FIXED_COLUMNS or key == NOTE_COLUMN else h
        seen[name] += 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        names.append(name)
        keep.append(k)

    rows: list[dict[str, str]] = []
    skipped = 0
    first_col = names[0] if names else ""
    for r in body:
        row = {name: unescape_cell(r[k].strip()) for name, k in zip(names, keep, strict=True)}
        lead = row.get("n", row.get(first_col, "")).strip().lower().rstrip(":")
        if lead in _SUM_WORDS:
            skipped += 1
            continue
        rows.append(row)

    if "n" not in names and not {"label", "pred"} <= set(names):
        # A data table or any other CSV: every numeric cell would count as a mark.
        shown = ", ".join(names) if len(names) <= 6 else ", ".join(names[:5]) + f" .. {names[-1]}"
        raise SheetError(
            f"{path}: expected an error-analysis sheet (columns n, label, pred ... as `diagnose errors` writes), "
            f"got columns {shown}; tally the sheet diagnose errors wrote, or number the rows in a column named n"
        )
    note = NOTE_COLUMN if NOTE_COLUMN in names else None
    free = [n for n in names if n not in FIXED_COLUMNS and n != NOTE_COLUMN]
    if categories is not None:
        by_key = {_key(n): n for n in free}
        missing = [c for c in categories if _key(c) not in by_key]
        if missing:
            raise SheetError(
                f"{path}: expected category columns {', '.join(missing)}, got columns {', '.join(names)}; "
                "pass --categories with names from the header"
            )
        chosen = [by_key[_key(c)] for c in categories]
    else:
        chosen = free
    if not chosen:
        raise SheetError(
            f"{path}: expected at least one category column besides {', '.join(FIXED_COLUMNS)} and note, "
            f"got columns {', '.join(names)}; add a column per category (or rerun `diagnose errors`)"
        )
    if not rows:
        raise SheetError(f"{path}: expected one row per sampled error, got only the header; run `diagnose errors`")
    splits = Counter(row["split"] for row in rows if row.get("split"))
    return Sheet(
        path=path,
        columns=tuple(names),
        categories=tuple(chosen),
        note_column=note,
        rows=tuple(rows),
        split=splits.most_common(1)[0][0] if splits else None,
        skipped_rows=skipped,
        delimiter=delimiter,
        encoding=encoding,
    )


def sheet_exists_with_work(path: Path) -> int:
    """Filled category/note cells of an existing sheet (0 if none or no file); -1 if it is not a sheet."""
    if not os.path.exists(path):
        return 0
    try:
        return read_sheet(path).filled_cells()
    except SheetError:
        return -1


def tally_sheet(
    sheet: Path, *, error: float | None = None, error_source: str | None = None, split: str | None = None,
    categories: Sequence[str] | None = None, skip_unmarked: bool = False, workdir: Path | None = None,
) -> SheetTally:
    """Read a marked sheet and count it (core.tally.tally_marks), with its context. Without `error`,
    the split's error rate comes from the manifest of `workdir` (or the `.diagnose/` beside the sheet)
    for `split`, or the sheet's own split column."""
    from dataclasses import replace

    from diagnose.core.tally import TallyContext, tally_marks
    from diagnose.io.manifest import manifest_error

    data = read_sheet(sheet, categories=categories)
    split_name = split if split is not None else data.split
    split_errors = None
    if error is None and split_name and workdir is not None:
        error, error_source, split_errors = manifest_error(workdir, sheet, split_name)
    result = tally_marks(data.categories, data.category_cells(), notes=data.notes(), error=error,
                         skip_unmarked=skip_unmarked)
    return replace(result, context=TallyContext(sheet=str(sheet), split=split_name, error_source=error_source,
                                                skipped_rows=data.skipped_rows, split_errors=split_errors))
