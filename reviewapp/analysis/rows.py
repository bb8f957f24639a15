"""Typed rows from PostgreSQL into Arrow: the one path every export and analysis frame takes.

A tidy query (``selectors.ratings_query``, ``spans_query``, ``reports_query``) returns typed
columns; a server-side cursor hands its rows over FETCH_ROWS at a time and each block becomes
one Arrow record batch with the schema of ``arrow_schema``. No text is formatted in the
database and none is parsed back: CSV is written from the batches (``exports``), Parquet from
the same batches, and the analysis page's pandas frame from them too (``results``).

Decision: psycopg's row loaders (in C) behind Django's own connection, rather than a second
connection (ADBC, connectorx), because exports and analysis run inside the caller's
transaction and must see what it sees; and rather than ``COPY ... (FORMAT binary)``, whose
stream would need a decoder of our own for the same typed values.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection
from psycopg import sql as pgsql

from reviewapp.analysis.selectors import BOOL_COLUMNS, DATETIME_COLUMNS, FLOAT_COLUMNS, INT_COLUMNS

FETCH_ROWS = 10_000
# Time stamps as text (CSV, the analysis frame): ISO 8601 in UTC with microseconds.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # %S carries the microseconds of a "us" time stamp


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


def record_batches(
    query: pgsql.Composable, columns: list[str], *, rows: int = FETCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield a tidy query's rows as Arrow record batches of at most ``rows`` rows.

    Runs on Django's connection (the caller's transaction) through a server-side cursor, so
    memory holds one batch whatever the table's size. The query's columns must be ``columns``,
    in order, typed as ``arrow_schema`` says (time stamps as integer microseconds since 1970).
    """
    schema = arrow_schema(columns)
    connection.ensure_connection()
    statement = query.as_string(connection.connection)
    with connection.chunked_cursor() as cursor:
        cursor.execute(statement)
        while fetched := cursor.fetchmany(rows):
            values = zip(*fetched, strict=True)
            yield pa.RecordBatch.from_arrays(
                [_array(v, f.type) for v, f in zip(values, schema, strict=True)], schema=schema
            )


def _array(values: tuple[object, ...], kind: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(kind):
        # Time stamps arrive as microseconds since the epoch (see selectors._epoch_us).
        return pa.array(values, type=pa.int64()).cast(kind)
    return pa.array(values, type=kind)


def table(query: pgsql.Composable, columns: list[str]) -> pa.Table:
    """A tidy query's whole result as one Arrow table (for analysis, not for exports)."""
    return pa.Table.from_batches(list(record_batches(query, columns)), schema=arrow_schema(columns))


def timestamps_as_text(data: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
    """Time stamp columns as ISO 8601 text (``TIMESTAMP_FORMAT``); other columns unchanged."""
    for index, field in enumerate(data.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.strftime(data.column(index), format=TIMESTAMP_FORMAT)
            data = data.set_column(index, field.name, text)
    return data


def frame(query: pgsql.Composable, columns: list[str]) -> pd.DataFrame:
    """A tidy query as the analysis frame: text columns with "" for NULL (time stamps as
    ISO text, which sorts in time order), numbers and booleans typed (NULL as NaN)."""
    data = timestamps_as_text(table(query, columns))
    for index, field in enumerate(data.schema):
        if pa.types.is_string(field.type):
            data = data.set_column(index, field.name, pc.fill_null(data.column(index), ""))
    return data.to_pandas()
