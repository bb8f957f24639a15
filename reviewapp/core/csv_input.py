"""Reading a CSV file a person uploaded: the one way every import reads one (reports,
candidate reports, reader invitations, dataset manifests).

Spreadsheets save UTF-8 with or without a byte-order mark, and people upload the wrong file:
binary data is refused whole; text that is not UTF-8 is kept apart row by row (decoded with
``surrogateescape``, so one bad row does not refuse the file). Rows are numbered as a
spreadsheet numbers them (the header is row 1), not by physical line: cells often hold quoted
line breaks. A row the reader cannot parse, with the wrong number of fields or with undecodable
text comes with the reason; blank rows are skipped. What each column means is the importer's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass


class CsvRefused(ValueError):
    """The whole file is refused; the message says why, in words."""


@dataclass(frozen=True)
class CsvRow:
    number: int  # as a spreadsheet numbers it: the header is row 1
    values: list[str]  # empty when ``problem`` is set
    problem: str = ""


def csv_text(data: bytes) -> str:
    """The uploaded bytes as text (a byte-order mark dropped); refuse binary data."""
    if b"\x00" in data:
        raise CsvRefused("This is not a CSV text file (it contains binary data).")
    return data.decode("utf-8-sig", errors="surrogateescape")


def _undecodable(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def csv_rows(text: str) -> tuple[list[str], Iterator[CsvRow]]:
    """The header row, and the data rows as they are read; refuse a file without a header."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        headers = next(reader)
    except StopIteration:
        raise CsvRefused("The file is empty.") from None
    except csv.Error as exc:
        raise CsvRefused(f"The header row is not valid CSV ({exc}).") from None

    def rows() -> Iterator[CsvRow]:
        number = 1
        while True:
            number += 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader starts afresh at the next line: later rows still get their chance.
                yield CsvRow(number, [], f"malformed CSV ({exc})")
                continue
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(headers):
                problem = f"has {len(values)} fields where the header has {len(headers)}"
                yield CsvRow(number, [], problem)
            elif any(_undecodable(v) for v in values):
                yield CsvRow(number, [], "is not valid UTF-8 text (save the file as CSV UTF-8)")
            else:
                yield CsvRow(number, values)

    return headers, rows()
