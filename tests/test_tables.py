"""The shared CSV reader: byte-order marks, undecodable bytes, over-long fields and ragged
records become bad items naming file and line."""

from __future__ import annotations

import bz2
import csv
import gzip
import zipfile

import pytest

from negev.plugins.tables import FIELD_LIMIT, read_csv_records, read_csv_rows, text_bytes


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfpath,labels\na.x,cat\n")
    table = read_csv_rows(path)
    assert table.header == ["path", "labels"]
    assert table.rows == [(2, {"path": "a.x", "labels": "cat"})] and table.bad == []


LATIN_1 = "(a file saved as Latin-1 or Windows-1252? negev reads UTF-8: re-save it as UTF-8)"


def test_bad_bytes_long_fields_and_extra_cells_are_bad_records_by_line(tmp_path):
    path = tmp_path / "t.csv"
    long = "x" * (FIELD_LIMIT + 1)
    path.write_bytes(
        b"a,b\n1,2\n3,\xff4\n\n" + f'"{long}",5\n'.encode() + b'"two\nlines",6\n7,8,9\n10\n11,12,\n'
    )
    table = read_csv_rows(path)
    assert [(b.name, b.reason) for b in table.bad] == [
        ("t.csv:3", f"not UTF-8: byte 0xff in column 'b' {LATIN_1}"),
        ("t.csv:5", f"column 'a' has {FIELD_LIMIT + 1} characters, over the limit of 131072"),
        ("t.csv:8", "3 fields, the header has 2 ('9' past it)"),
    ]
    assert table.rows == [
        (2, {"a": "1", "b": "2"}),
        (6, {"a": "two\nlines", "b": "6"}),
        (9, {"a": "10", "b": ""}),
        (10, {"a": "11", "b": "12"}),
    ]
    assert csv.field_size_limit() == FIELD_LIMIT  # the module's limit is restored


def test_records_without_header_and_an_unreadable_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"1,2\n\xfe,3\n")
    records, bad = read_csv_records(path)
    assert records == [(1, ["1", "2"])] and [b.name for b in bad] == ["t.csv:2"]
    path.write_bytes(b"\xfe,3\n1,2\n")
    with pytest.raises(ValueError, match=r"t\.csv:1: the header is unusable: not UTF-8"):
        read_csv_rows(path)
    path.write_bytes(b"")
    assert read_csv_rows(path).header == []


def test_a_column_named_twice_in_the_header_is_an_error(tmp_path):
    """Which of two ``label`` columns holds the labels would be a guess (a dict keeps the last)."""
    path = tmp_path / "t.csv"
    path.write_text("text,label,label,,\nfine,0,1,,\n")
    with pytest.raises(ValueError, match=r"t.csv:1: the header names column\(s\) 'label' more"):
        read_csv_rows(path)
    path.write_text("text,label,,\nfine,0,,\n")  # unnamed (empty) trailing columns are not names
    assert read_csv_rows(path).rows == [(2, {"text": "fine", "label": "0", "": ""})]


def test_a_reader_may_allow_longer_fields(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(f"a,b\n{'x' * (FIELD_LIMIT + 5)},1\n")
    assert read_csv_rows(path).bad and not read_csv_rows(path, FIELD_LIMIT + 5).bad
    assert not read_csv_rows(path, None).bad


def test_a_tab_or_semicolon_separated_file_is_named_as_such(tmp_path):
    path = tmp_path / "t.csv"
    for separator in ("\t", ";"):
        path.write_text(f"text{separator}label\nfine{separator}1\n")
        with pytest.raises(ValueError, match="t.csv:1: the header is one column, .* looks tab- or"):
            read_csv_rows(path)


def test_a_row_of_empty_cells_is_a_blank_line(tmp_path):
    """A spreadsheet's blank row (``,``) holds nothing to lose: skipped as a blank line is."""
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine,1\n,\n , \n\nbad,0\n")
    assert [line for line, _ in read_csv_rows(path).rows] == [2, 6]
    assert read_csv_rows(path).bad == []
    path.write_text('smiles\nCCO\n""\n  \n\nCCN\n')  # one column: "" is its empty value
    rows = read_csv_rows(path).rows
    assert rows == [(2, {"smiles": "CCO"}), (3, {"smiles": ""}), (4, {"smiles": "  "}),
                    (6, {"smiles": "CCN"})]  # fmt: skip


def test_a_file_of_another_format_is_named_as_such(tmp_path):
    """What people hand a CSV reader: a compressed CSV, a workbook, Parquet, UTF-16 text."""
    csv_text = b"text,label\ngood,pos\n"
    workbook = tmp_path / "book.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    files = {
        "a.csv.gz": (gzip.compress(csv_text), "gzip-compressed, not UTF-8 text: decompress it"),
        "a.csv.bz2": (bz2.compress(csv_text), "bzip2-compressed"),
        "book.xlsx": (workbook.read_bytes(), "a zip archive .*export or extract it as CSV"),
        "t.parquet": (b"PAR1\x15\x04" + bytes(20) + b"PAR1", "a Parquet file, not UTF-8 text"),
        "u16.csv": (csv_text.decode().encode("utf-16"), "UTF-16 text, not UTF-8 text: save it"),
    }
    for name, (content, message) in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        for read in (read_csv_rows, read_csv_records, text_bytes):
            with pytest.raises(ValueError, match=f"{name}: {message}"):
                read(path)
    for header in (b"text,label\n", b"PAR1,PAR2,label\n", b"BZh,label\n"):  # CSV after all
        path = tmp_path / "plain.csv"
        path.write_bytes(header + b"1,2,3\n")
        assert text_bytes(path) == header + b"1,2,3\n"


def test_a_quote_never_closed_is_a_bad_line_and_the_rows_after_it_are_read(tmp_path):
    """A stray quote used to swallow the rest of the file into one field, silently."""
    path = tmp_path / "q.csv"
    path.write_text('text,label\n"two\nlines",pos\n"stray,neg\nnext,pos\nlast,neg\n')
    table = read_csv_rows(path)
    assert table.rows == [
        (2, {"text": "two\nlines", "label": "pos"}),
        (5, {"text": "next", "label": "pos"}),
        (6, {"text": "last", "label": "neg"}),
    ]
    assert [b.name for b in table.bad] == ["q.csv:4"]
    assert "never closed, so the rest of the file would be one field" in table.bad[0].reason
    for text, rows, bad in (
        ('a,b\n1,2\n"x" ,"stray\n3,4\n', [2, 4], ["q.csv:3"]),  # after a loose closed quote
        ('a,b\n1,2\n"stray,3\n', [2], ["q.csv:3"]),  # on the last line
    ):
        path.write_text(text)
        table = read_csv_rows(path)
        assert [line for line, _ in table.rows] == rows and [b.name for b in table.bad] == bad
    path.write_text('"a,b\n1,2\n')
    with pytest.raises(ValueError, match=r"q.csv:1: the header is unusable: a quote opened"):
        read_csv_rows(path)
    path.write_text('a,b\n"x\ny",1 "\n')  # closed over two lines, a stray quote after: a field
    assert read_csv_rows(path).rows == [(2, {"a": "x\ny", "b": '1 "'})]
