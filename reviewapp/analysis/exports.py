"""Writing tidy rows as CSV (RFC 4180, UTF-8) and Parquet, a bounded chunk at a time.

Neither format holds the whole table in memory: CSV is yielded in blocks of rows as they come
off the database cursor; Parquet is written row group by row group to a temporary file (the
format's footer needs every group's offsets, so it cannot go straight to the socket) and the
file is then streamed and removed.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, StreamingHttpResponse

from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.selectors import (
    BOOL_COLUMNS,
    DATETIME_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    SPAN_COLUMNS,
    rating_columns,
    rating_rows,
    span_rows,
)
from reviewapp.analysis.services import export_audit_finish, export_audit_start
from reviewapp.studies.models import ReaderStudy

ROWS_PER_BLOCK = 2000
ROWS_PER_GROUP = 50_000


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def csv_chunks(
    rows: Iterable[dict[str, Any]],
    *,
    columns: list[str],
    on_done: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the CSV (header first) in blocks of ROWS_PER_BLOCK rows; call on_done(rows)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
        count += 1
        if count % ROWS_PER_BLOCK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
    if on_done is not None:
        on_done(count)


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


def parquet_write(
    rows: Iterable[dict[str, Any]], *, columns: list[str], sink: str | IO[bytes]
) -> int:
    """Write rows to a Parquet file in row groups of ROWS_PER_GROUP; return the row count."""
    schema = arrow_schema(columns)
    count = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == ROWS_PER_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def parquet_temp_file(
    rows: Iterable[dict[str, Any]], *, columns: list[str]
) -> tuple[IO[bytes], int]:
    """Write rows to an anonymous temporary Parquet file; return it (rewound) and the count.

    The file is unlinked at once, so it disappears when closed however the download ends.
    """
    handle = tempfile.TemporaryFile(prefix="radreview-export-", suffix=".parquet")  # noqa: SIM115
    try:
        count = parquet_write(rows, columns=columns, sink=handle)
        handle.flush()
        handle.seek(0, os.SEEK_SET)
    except BaseException:
        handle.close()
        raise
    return handle, count


# --------------------------------------------------------------------------------------------
# One export, from any interface
# --------------------------------------------------------------------------------------------

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def export_rows(
    reader_study: ReaderStudy, dataset: str
) -> tuple[Iterator[dict[str, Any]], list[str]]:
    """The rows and columns of one dataset of an (already authorised) study."""
    if dataset == ExportAudit.Dataset.RATINGS:
        return rating_rows(reader_study=reader_study), rating_columns(reader_study)
    if dataset == ExportAudit.Dataset.SPANS:
        return span_rows(reader_study=reader_study), SPAN_COLUMNS
    raise ValueError(f"unknown dataset {dataset!r}")


def export_filename(reader_study: ReaderStudy, dataset: str, fmt: str) -> str:
    return f"reader-study-{reader_study.public_id}-{dataset}.{fmt}"


def file_chunks(handle: IO[bytes], *, size: int = 1 << 20) -> Iterator[bytes]:
    """Yield a file's bytes in blocks, closing (and so deleting) it at the end."""
    try:
        while block := handle.read(size):
            yield block
    finally:
        handle.close()


def async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Serve a synchronous chunk iterator to an ASGI server one chunk at a time.

    Django consumes a synchronous iterator under ASGI by first reading it whole into a list,
    which would hold a 100k-rating export in memory; pulling each chunk through
    ``sync_to_async`` keeps it streaming. thread_sensitive keeps every step on the thread
    that owns the database connection and its server-side cursor.
    """

    def pull() -> bytes | None:
        return next(chunks, None)

    step = sync_to_async(pull, thread_sensitive=True)

    async def generate() -> AsyncIterator[bytes]:
        while (part := await step()) is not None:
            yield part

    return generate()


def export_response(
    *,
    user: AbstractBaseUser,
    reader_study: ReaderStudy,
    dataset: str,
    fmt: str,
    interface: str,
    asynchronous: bool = False,
) -> StreamingHttpResponse:
    """Audit, then stream one export as a download (CSV straight from the cursor).

    ``asynchronous``: the request came through ASGI (daphne), so stream via ``async_chunks``.
    """
    if dataset not in ExportAudit.Dataset.values or fmt not in ExportAudit.Format.values:
        raise Http404("No such export.")
    audit = export_audit_start(
        user=user, reader_study=reader_study, dataset=dataset, format=fmt, interface=interface
    )
    rows, columns = export_rows(reader_study, dataset)
    chunks: Iterator[bytes]
    if fmt == ExportAudit.Format.CSV:
        chunks = csv_chunks(
            rows, columns=columns, on_done=lambda n: export_audit_finish(audit=audit, row_count=n)
        )
    else:
        handle, count = parquet_temp_file(rows, columns=columns)
        export_audit_finish(audit=audit, row_count=count)
        chunks = file_chunks(handle)
    response = StreamingHttpResponse(
        async_chunks(chunks) if asynchronous else chunks, content_type=CONTENT_TYPES[fmt]
    )
    filename = export_filename(reader_study, dataset, fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Exports carry the unblinding key: never let a shared cache keep one.
    response["Cache-Control"] = "private, no-store"
    return response
