"""Exports: the tidy tables as CSV (RFC 4180, UTF-8) and Parquet, a bounded block at a time.

PostgreSQL writes the CSV records itself and a server-side cursor hands them over in blocks,
so neither format holds the table in memory: CSV blocks go straight to the client;
Parquet is parsed from the same stream by pyarrow and written row group by row group to a
temporary file (the format's footer needs every group's offsets, so it cannot go straight to
the socket), which is then streamed and removed.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.http import Http404, StreamingHttpResponse
from psycopg import sql as pgsql

from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.selectors import (
    BOOL_COLUMNS,
    DATETIME_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    dataset_query,
)
from reviewapp.analysis.services import export_audit_finish, export_audit_start
from reviewapp.studies.models import ReaderStudy

PARSE_BYTES = 1 << 23
FETCH_ROWS = 5000


def copy_csv(
    query: pgsql.Composable,
    columns: list[str],
    *,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield a tidy query's CSV (RFC 4180): the header, then blocks of whole records.

    PostgreSQL formats the records (``ratings_query``, ``spans_query``: one per result row)
    and a server-side cursor hands them over FETCH_ROWS at a time, so memory stays flat.
    Runs on Django's connection (the caller's transaction); ``on_done`` gets the number of
    data rows after the last block.
    """
    header = ",".join(columns) + "\r\n"
    yield header.encode("utf-8")
    connection.ensure_connection()
    statement = query.as_string(connection.connection)
    rows = 0
    with connection.chunked_cursor() as cursor:
        cursor.execute(statement)
        while fetched := cursor.fetchmany(FETCH_ROWS):
            rows += len(fetched)
            yield "".join([record for (record,) in fetched]).encode("utf-8")
    if on_done is not None:
        on_done(rows)


def _arrow_type(column: str) -> pa.DataType:
    if column in DATETIME_COLUMNS:
        return pa.timestamp("us", tz="UTC")
    if column in FLOAT_COLUMNS:
        return pa.float64()
    if column in INT_COLUMNS:
        return pa.int64()
    if column in BOOL_COLUMNS:
        return pa.bool_()
    if column.startswith("outcome_"):
        return pa.int8()
    return pa.string()


def arrow_schema(columns: list[str]) -> pa.Schema:
    return pa.schema([pa.field(c, _arrow_type(c), nullable=True) for c in columns])


def parquet_write(csv_blocks: Iterable[bytes], *, columns: list[str], sink: str | IO[bytes]) -> int:
    """Convert CSV blocks (header first, whole records) to Parquet; return the row count.

    Blocks are parsed about 8 MiB at a time, each becoming a row group. The parsing happens
    here, on the caller's thread, because the blocks come from the caller's database
    connection; pyarrow's streaming reader would pull them from a thread of its own.
    """
    schema = arrow_schema(columns)
    read_options = pacsv.ReadOptions(column_names=columns)
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        column_types=schema,
        null_values=[""],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        true_values=["true"],
        false_values=["false"],
    )
    count = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        pending = bytearray()
        header_left = True

        def flush() -> int:
            table = pacsv.read_csv(
                io.BytesIO(bytes(pending)),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            writer.write_table(table.select(columns).cast(schema))
            pending.clear()
            return table.num_rows

        for block in csv_blocks:
            if header_left:
                # The header holds plain column names: it ends at the first line break.
                block = block[block.index(b"\n") + 1 :]
                header_left = False
            pending += block
            if len(pending) >= PARSE_BYTES:
                count += flush()
        if pending:
            count += flush()
        elif count == 0:
            writer.write_table(schema.empty_table())
    return count


def parquet_temp_file(csv_blocks: Iterable[bytes], *, columns: list[str]) -> tuple[IO[bytes], int]:
    """Write Parquet to an anonymous temporary file; return it (rewound) and the row count.

    The file has no name on disk, so it disappears when closed however the download ends.
    """
    handle = tempfile.TemporaryFile(prefix="radreview-export-", suffix=".parquet")  # noqa: SIM115
    try:
        count = parquet_write(csv_blocks, columns=columns, sink=handle)
        handle.flush()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle, count


def file_chunks(handle: IO[bytes], *, size: int = 1 << 20) -> Iterator[bytes]:
    """Yield a file's bytes in blocks, closing (and so deleting) it at the end."""
    try:
        while block := handle.read(size):
            yield block
    finally:
        handle.close()


# --------------------------------------------------------------------------------------------
# One export, from any interface
# --------------------------------------------------------------------------------------------

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def export_filename(reader_study: ReaderStudy, dataset: str, fmt: str) -> str:
    return f"reader-study-{reader_study.public_id}-{dataset}.{fmt}"


def export_chunks(
    *,
    reader_study: ReaderStudy,
    dataset: str,
    fmt: str,
    on_done: Callable[[int], None],
) -> Iterator[bytes]:
    """The bytes of one export of an (already authorised) study, block by block.

    CSV neutralises spreadsheet formulas in free-text cells (``FREE_TEXT_COLUMNS``); Parquet
    is read by code, not spreadsheets, and keeps every value raw.
    """
    if fmt == ExportAudit.Format.CSV:
        query, columns = dataset_query(
            reader_study=reader_study, dataset=dataset, spreadsheet_safe=True
        )
        return copy_csv(query, columns, on_done=on_done)
    query, columns = dataset_query(reader_study=reader_study, dataset=dataset)
    handle, count = parquet_temp_file(copy_csv(query, columns), columns=columns)
    on_done(count)
    return file_chunks(handle)


def export_response(
    *,
    user: AbstractBaseUser,
    reader_study: ReaderStudy,
    dataset: str,
    fmt: str,
    interface: str,
) -> StreamingHttpResponse:
    """Audit, then stream one export as a download (block by block: memory stays flat)."""
    if dataset not in ExportAudit.Dataset.values or fmt not in ExportAudit.Format.values:
        raise Http404("No such export.")
    audit = export_audit_start(
        user=user, reader_study=reader_study, dataset=dataset, format=fmt, interface=interface
    )
    chunks = export_chunks(
        reader_study=reader_study,
        dataset=dataset,
        fmt=fmt,
        on_done=lambda n: export_audit_finish(audit=audit, row_count=n),
    )
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    filename = export_filename(reader_study, dataset, fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Exports carry the unblinding key: never let a shared cache keep one.
    response["Cache-Control"] = "private, no-store"
    return response
