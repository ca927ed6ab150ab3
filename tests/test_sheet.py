"""Error-analysis sheets written for spreadsheets, and read back as spreadsheets save them."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnose.exceptions import SheetError
from diagnose.io.sheet import backup, read_sheet, sheet_exists_with_work, write_sheet

HEADER = ["n", "split", "index", "id", "label", "pred", "confidence", "p_label", "loss", "suspect_mislabel",
          "blurry", "confusable", "mislabeled", "other", "note"]


def test_written_bytes_open_in_spreadsheets(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    rows = [[1, "dev", 4, "caf\u00e9/1.png", "chat", "chien", 0.94991, 0.0124, 4.387, "yes", None, None, None, None,
             None],
            [2, "dev", 9, "a,b.png", "=cmd", "x", float("nan"), None, 1.0, "no", None, None, None, None, 'say "hi"']]
    write_sheet(path, HEADER, rows)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfn,split,index,id,label,pred,confidence,p_label,loss,suspect_mislabel,")
    assert raw.count(b"\r\n") == 3 and raw.count(b"\n") == 3  # CRLF everywhere, nothing else
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[1] == "1,dev,4,caf\u00e9/1.png,chat,chien,0.9499,0.0124,4.3870,yes,,,,,"
    # The comma is quoted, the quote doubled, the would-be formula kept as text.
    assert lines[2] == "2,dev,9,\"a,b.png\",'=cmd,x,,,1.0000,no,,,,,\"say \"\"hi\"\"\""
    sheet = read_sheet(path)
    assert sheet.categories == ("blurry", "confusable", "mislabeled", "other")
    assert sheet.rows[1]["note"] == 'say "hi"' and sheet.rows[0]["id"] == "caf\u00e9/1.png"
    assert sheet.filled_cells() == 1


def test_excel_german_locale_bom_crlf_semicolons_renamed_reordered(tmp_path: Path) -> None:
    # Excel "CSV UTF-8" in a locale whose list separator is ';': BOM, CRLF, ';', decimal commas,
    # quoted fields holding ';', columns reordered, categories renamed, a check mark, a sum row.
    raw = (
        "\ufeffNumber;Mislabel;Blurry image;Note;split;index;label;pred;confidence;p_label;loss;suspect_mislabel;"
        "confusable;other\r\n"
        "1;x;;\"dark; rotated\";dev;4;1;8;0,9499;0,0124;4,387;yes;;\r\n"
        "2;;\u2713;;dev;5;8;9;0,5137;0,3644;1,0094;no;FALSCH;\r\n"
        "3;no;;;dev;7;2;8;0,4;0,3;1,2;no;;x\r\n"
        "Summe;1;1;;;;;;;;;;0;1\r\n"
    ).encode("utf-8")
    path = tmp_path / "excel.csv"
    path.write_bytes(raw)
    sheet = read_sheet(path)
    assert sheet.delimiter == ";" and sheet.encoding == "utf-8-sig"
    assert sheet.categories == ("Mislabel", "Blurry image", "confusable", "other")
    assert sheet.note_column == "note" and sheet.notes()[0] == "dark; rotated"
    assert sheet.split == "dev" and len(sheet.rows) == 3 and sheet.skipped_rows == 1
    assert sheet.category_cells() == [["x", "", "", ""], ["", "\u2713", "FALSCH", ""], ["no", "", "", "x"]]


def test_libreoffice_lf_all_text_quoted_trailing_empty_columns(tmp_path: Path) -> None:
    # LibreOffice Calc with "Quote all text cells": no BOM, LF, every text cell quoted, and two
    # empty trailing columns left by formatting.
    raw = (
        b'"n","split","index","label","pred","blurry","confusable","mislabeled","other","note","",""\n'
        b'1,"dev",4,"1","8","","","x","","looks like an 8",,\n'
        b'2,"dev",5,"8","9","x","x","","","",,\n'
    )
    path = tmp_path / "lo.csv"
    path.write_bytes(raw)
    sheet = read_sheet(path)
    assert sheet.delimiter == "," and sheet.encoding == "utf-8"
    assert sheet.columns == ("n", "split", "index", "label", "pred", "blurry", "confusable", "mislabeled", "other", "note")
    assert sheet.category_cells() == [["", "", "x", ""], ["x", "x", "", ""]]


def test_excel_ansi_csv_and_unicode_text(tmp_path: Path) -> None:
    ansi = tmp_path / "ansi.csv"
    ansi.write_bytes("n,label,pred,blurry,note\r\n1,caf\u00e9,th\u00e9,x,tr\u00e8s flou\r\n".encode("cp1252"))
    sheet = read_sheet(ansi)
    assert sheet.encoding == "cp1252" and sheet.rows[0]["note"] == "tr\u00e8s flou"
    utf16 = tmp_path / "unicode.txt"
    utf16.write_bytes("n\tlabel\tpred\tblurry\tnote\r\n1\t1\t8\tx\t\u2713 ok\r\n".encode("utf-16"))
    sheet = read_sheet(utf16)
    assert sheet.delimiter == "\t" and sheet.category_cells() == [["x"]] and sheet.notes() == ["\u2713 ok"]


def test_categories_picked_by_name_ignoring_case_and_spaces(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("n,Blurry Image,reviewer,note\n1,x,ana,\n", encoding="utf-8")
    assert read_sheet(path).categories == ("Blurry Image", "reviewer")
    assert read_sheet(path, categories=["blurry-image"]).categories == ("Blurry Image",)
    with pytest.raises(SheetError) as err:
        read_sheet(path, categories=["mislabeled"])
    assert str(err.value) == (
        f"{path}: expected category columns mislabeled, got columns n, Blurry Image, reviewer, note; "
        "pass --categories with names from the header"
    )


def test_unreadable_sheets_get_one_clear_line(tmp_path: Path) -> None:
    xlsx = tmp_path / "sheet.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(SheetError, match=r"got a zipped workbook \(.xlsx or .ods\); save it as CSV"):
        read_sheet(xlsx)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SheetError, match="got an empty file"):
        read_sheet(empty)
    blank = tmp_path / "blank.csv"  # an empty spreadsheet saved as CSV: delimiters, no text
    blank.write_bytes(b"\xef\xbb\xbf,,,\r\n,,\r\n \r\n")
    with pytest.raises(SheetError, match="got an empty file"):
        read_sheet(blank)
    assert sheet_exists_with_work(blank) == -1
    only = tmp_path / "only.csv"
    only.write_text("n,label,pred,note\n1,1,8,\n")
    with pytest.raises(SheetError, match="expected at least one category column"):
        read_sheet(only)
    with pytest.raises(SheetError, match="got no such file"):
        read_sheet(tmp_path / "missing.csv")


def test_a_csv_that_is_not_a_sheet_is_refused(tmp_path: Path) -> None:
    # A data table's numbers would all count as marks: 100% of every "category".
    table = tmp_path / "dev.csv"
    table.write_text("id,p0,p1,p2,p3,p4,p5,label\na,0.1,0,0.3,0.2,0.5,0.1,3\n", encoding="utf-8")
    with pytest.raises(SheetError) as err:
        read_sheet(table)
    assert str(err.value) == (
        f"{table}: expected an error-analysis sheet (columns n, label, pred ... as `diagnose errors` writes), "
        "got columns id, p0, p1, p2, p3 .. label; tally the sheet diagnose errors wrote, or number the rows in a column named n"
    )
    assert sheet_exists_with_work(table) == -1
    six = tmp_path / "six.csv"
    six.write_text("id,p0,p1,p2,p3,label\na,0.1,0,0.3,0.2,3\n", encoding="utf-8")
    with pytest.raises(SheetError, match="got columns id, p0, p1, p2, p3, label; "):
        read_sheet(six)
    # A sheet made by hand in a spreadsheet: "Number" is the n column.
    hand = tmp_path / "hand.csv"
    hand.write_text("Number,Blurry,Mislabel,note\n1,x,,\n2,,x,dark\n", encoding="utf-8")
    assert read_sheet(hand).categories == ("Blurry", "Mislabel")


def test_backup_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("one")
    assert backup(path).name == "s.csv.bak"
    path.write_text("two")
    assert backup(path).name == "s.csv.bak.1"
    assert (tmp_path / "s.csv.bak").read_text() == "one" and (tmp_path / "s.csv.bak.1").read_text() == "two"


def test_work_detection(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    assert sheet_exists_with_work(path) == 0
    write_sheet(path, HEADER, [[1, "dev", 0, None, "1", "8", 0.5, 0.1, 1.0, "no", None, None, None, None, None]])
    assert sheet_exists_with_work(path) == 0
    path.write_text(path.read_text(encoding="utf-8-sig").replace("no,,,,,", "no,,,,,checked"), encoding="utf-8")
    assert sheet_exists_with_work(path) == 1
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert sheet_exists_with_work(path) == -1
