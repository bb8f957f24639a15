"""The one CSV reader every import uses (reports, candidates, invitations, dataset manifests)."""

from __future__ import annotations

import pytest

from reviewapp.core.csv_input import CsvRefused, CsvRow, csv_rows, csv_text


def test_rows_are_numbered_as_a_spreadsheet_shows_them_with_each_bad_row_named() -> None:
    data = (
        (
            "\ufeffid,text\r\n"  # a spreadsheet's byte-order mark
            "1,plain\r\n"
            '2,"two\r\nlines"\r\n'  # one row, two physical lines
            ",\r\n"  # blank: skipped
            "3,a,b\r\n"
        ).encode()
        + b"4,caf\xe9\r\n"
        + b'5,"unclosed\r\n'
    )
    headers, rows = csv_rows(csv_text(data))
    assert headers == ["id", "text"]
    read = list(rows)
    assert read[:2] == [CsvRow(2, ["1", "plain"]), CsvRow(3, ["2", "two\r\nlines"])]
    assert read[2] == CsvRow(5, [], "has 3 fields where the header has 2")
    assert read[3] == CsvRow(6, [], "is not valid UTF-8 text (save the file as CSV UTF-8)")
    assert read[4].number == 7
    assert read[4].problem.startswith("malformed CSV")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "The file is empty."),
        (b"id\x00,text\n", "This is not a CSV text file (it contains binary data)."),
        (b'"id\n', "The header row is not valid CSV"),
    ],
)
def test_a_file_without_a_usable_header_is_refused_whole(data: bytes, reason: str) -> None:
    with pytest.raises(CsvRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        csv_rows(csv_text(data))
