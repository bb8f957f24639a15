"""Typed rows from PostgreSQL into Arrow: the one path every export and analysis frame takes.

A tidy query (``selectors.ratings_query``, ``spans_query``, ``reports_query``) returns typed
columns; PostgreSQL's ``COPY ... TO STDOUT`` streams them and each block of about BLOCK_BYTES
becomes Arrow record batches converted with the declared ``arrow_schema`` (Arrow's C
converter, not our code, reads COPY's standard CSV). Nothing is quoted by hand in SQL: CSV
files are written from the batches (``exports``), Parquet from the same batches, and the
analysis page's pandas frame from them too (``results``).

Decision (measured, see bench/RESULTS.md): a server-side cursor's typed rows made Python
objects of every cell, about 1 s of CPU per 100k rows; COPY in PostgreSQL's own CSV dialect
converted by Arrow costs a fraction of that. ``COPY (FORMAT binary)`` would need a decoder of
our own; a second connection (ADBC, connectorx) would not see the caller's transaction.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection
from psycopg import sql as pgsql

from reviewapp.analysis.selectors import (
    BOOL_COLUMNS,
    DATETIME_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    TidyQuery,
)

BLOCK_BYTES = 1 << 23


def arrow_type(column: str) -> pa.DataType:
    """The Arrow type of a tidy column (everything not listed is text)."""
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
    return pa.schema([pa.field(c, arrow_type(c), nullable=True) for c in columns])


def _wire_schema(schema: pa.Schema) -> pa.Schema:
    """The schema as the rows travel: time stamps as integer microseconds since 1970."""
    return pa.schema(
        [pa.field(f.name, pa.int64()) if pa.types.is_timestamp(f.type) else f for f in schema]
    )


def record_batches(tidy: TidyQuery, *, block_bytes: int = BLOCK_BYTES) -> Iterator[pa.RecordBatch]:
    """Yield a tidy query's typed rows as Arrow record batches, about ``block_bytes`` each.

    ``COPY (query) TO STDOUT`` runs on Django's connection (the caller's transaction); its
    records are gathered into blocks and each block is converted with the query's declared
    schema, so memory holds one block whatever the table's size. The query's columns must be
    ``tidy.columns``, in order, typed as ``arrow_schema`` says (time stamps as integer
    microseconds since 1970, see ``selectors._epoch_us``).
    """
    schema = arrow_schema(tidy.columns)
    wire = _wire_schema(schema)
    # One thread: PostgreSQL, streaming the next records, needs the machine's other core.
    read_options = pacsv.ReadOptions(column_names=tidy.columns, use_threads=False)
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    # COPY's CSV: NULL is an empty unquoted field, an empty text a quoted one; booleans t / f.
    convert_options = pacsv.ConvertOptions(
        column_types=wire,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )

    def convert(block: list[bytes]) -> Iterator[pa.RecordBatch]:
        data = pacsv.read_csv(
            io.BytesIO(b"".join(block)),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        yield from data.select(tidy.columns).cast(schema).to_batches()

    connection.ensure_connection()
    statement = pgsql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(tidy.query)
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        block: list[bytes] = []
        size = 0
        # PostgreSQL sends one record per message, so a block always ends on a record.
        for record in copy:
            block.append(bytes(record))
            size += len(record)
            if size >= block_bytes:
                yield from convert(block)
                block, size = [], 0
        if block:
            yield from convert(block)


def table(tidy: TidyQuery) -> pa.Table:
    """A tidy query's whole result as one Arrow table (for analysis, not for exports)."""
    return pa.Table.from_batches(list(record_batches(tidy)), schema=arrow_schema(tidy.columns))


def timestamps_as_text(data: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
    """Time stamp columns as ISO 8601 text in UTC with microseconds (2026-01-05T08:00:00.000000Z);
    other columns unchanged."""
    for index, field in enumerate(data.schema):
        if pa.types.is_timestamp(field.type):
            # The values are UTC: formatting them as zone-less time stamps ("2026-01-05
            # 08:00:00.000000") costs a tenth of strftime or of a zoned cast, which look the
            # zone up per value.
            text = data.column(index).cast(pa.timestamp("us")).cast(pa.string())
            text = pc.binary_join_element_wise(pc.utf8_replace_slice(text, 10, 11, "T"), "Z", "")
            data = data.set_column(index, field.name, text)
    return data


def frame(tidy: TidyQuery) -> pd.DataFrame:
    """A tidy query as the analysis frame: text columns with "" for NULL (time stamps as
    ISO text, which sorts in time order), numbers and booleans typed (NULL as NaN)."""
    data = timestamps_as_text(table(tidy))
    for index, field in enumerate(data.schema):
        if pa.types.is_string(field.type):
            data = data.set_column(index, field.name, pc.fill_null(data.column(index), ""))
    return data.to_pandas()
