"""Exports: the tidy tables as CSV (RFC 4180, UTF-8) and Parquet, and a sidecar JSON.

Both formats are written from the same Arrow record batches of typed rows
(``rows.record_batches``), a bounded block at a time, so neither holds the table in memory:
CSV blocks go straight to the client (pyarrow's writer quotes every text value, doubles the
quotes inside, and leaves NULL an empty unquoted field); Parquet batches are gathered into row
groups of ROW_GROUP_ROWS and written to a temporary file (the format's footer needs every
group's offsets, so it cannot go straight to the socket), which is then streamed and removed.

The sidecar JSON describes a download: the study and protocol, when it was generated, the row
counts, the analysis rules and interval methods with the bootstrap parameters, the report
hash definition, the answer schema and the CSV conventions (the formula rule, time stamps).
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone

from reviewapp.analysis import answers, rows
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.results import AnalysisParams, analysis_headline
from reviewapp.analysis.selectors import (
    FORMULA_TRIGGERS,
    FREE_TEXT_COLUMNS,
    TABLE_DATASETS,
    assignment_status_counts,
    dataset_query,
    dataset_row_count,
    practice_ratings_count,
)
from reviewapp.analysis.services import export_audit_finish, export_audit_start
from reviewapp.studies.models import ReaderStudy

ROW_GROUP_ROWS = 1 << 16
BOM = "\ufeff"
# The one formula rule of CSV files, as a regular expression over a cell's start (RE2).
_TRIGGER_PATTERN = "^[" + "".join("\\-" if t == "-" else t for t in FORMULA_TRIGGERS) + "]"
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, eol="\r\n", quoting_style="needed")


def csv_neutralise(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch as CSV writes it: formulas neutralised in free-text columns, time stamps ISO.

    A free-text cell (``FREE_TEXT_COLUMNS``) that begins with a formula trigger gets a leading
    ' (the rule of ``selectors.csv_cell_neutralise``, applied to whole columns); ids, codes and
    numbers are never changed. Parquet is read by code, not spreadsheets, and keeps values raw.
    """
    for index, field in enumerate(batch.schema):
        if field.name in FREE_TEXT_COLUMNS:
            column = batch.column(index)
            flagged = pc.match_substring_regex(column, _TRIGGER_PATTERN)
            quoted = pc.binary_join_element_wise("'", column, "")
            batch = batch.set_column(index, field, pc.if_else(flagged, quoted, column))
    return rows.timestamps_as_text(batch)


def csv_chunks(
    batches: Iterable[pa.RecordBatch],
    columns: list[str],
    *,
    bom: bool = False,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield CSV: the header (after a UTF-8 BOM if asked), then one block per batch.

    The header comes before the query runs, so a download starts at once; ``on_done`` gets
    the number of data rows after the last block.
    """
    yield ((BOM if bom else "") + ",".join(columns) + "\r\n").encode("utf-8")
    count = 0
    for batch in batches:
        count += batch.num_rows
        sink = io.BytesIO()
        pacsv.write_csv(csv_neutralise(batch), sink, _CSV_OPTIONS)
        yield sink.getvalue()
    if on_done is not None:
        on_done(count)


def parquet_write(
    batches: Iterable[pa.RecordBatch], *, columns: list[str], sink: str | IO[bytes]
) -> int:
    """Write record batches to Parquet in row groups of ROW_GROUP_ROWS; return the row count."""
    schema = rows.arrow_schema(columns)
    count = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                count += pending_rows
                pending, pending_rows = [], 0
        if pending or count == 0:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
            count += pending_rows
    return count


def parquet_temp_file(
    batches: Iterable[pa.RecordBatch], *, columns: list[str]
) -> tuple[IO[bytes], int]:
    """Write Parquet to an anonymous temporary file; return it (rewound) and the row count.

    The file has no name on disk, so it disappears when closed however the download ends.
    """
    handle = tempfile.TemporaryFile(prefix="radreview-export-", suffix=".parquet")  # noqa: SIM115
    try:
        count = parquet_write(batches, columns=columns, sink=handle)
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
# The sidecar
# --------------------------------------------------------------------------------------------

# studies.models.rendering_sha256, in words (a test holds the two together).
HASH_DEFINITION = (
    'SHA-256 (hex) of the UTF-8 bytes of "FINDINGS\\n" + findings + "\\n\\nIMPRESSION\\n" + '
    "impression, where findings and impression are the rendered sections exactly as the "
    "reader was shown them (the reports dataset holds them)."
)


def export_sidecar(
    *, reader_study: ReaderStudy, analysis: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a download of the study's tables needs beside it to be read and reproduced.

    ``analysis``: parameters for ``results.analysis_results`` (resamples, seed, rule...): the
    sidecar states the rules and interval methods the analysis applies with them.
    """
    # The headline carries the rules, the bootstrap parameters and the counts: a sidecar
    # never waits for agreement CIs or figures.
    results = analysis_headline(
        reader_study=reader_study, params=AnalysisParams(**(analysis or {}))
    )
    tables = {
        dataset: {
            "rows": dataset_row_count(reader_study=reader_study, dataset=dataset),
            "columns": [
                {"name": f.name, "type": str(f.type)}
                for f in rows.arrow_schema(
                    dataset_query(reader_study=reader_study, dataset=dataset).columns
                )
            ],
        }
        for dataset in TABLE_DATASETS
    }
    statuses = assignment_status_counts(reader_study=reader_study)
    return {
        "study": {"id": str(reader_study.public_id), "name": reader_study.name},
        "protocol": {"key": reader_study.protocol_key, "version": reader_study.protocol_version},
        "generated_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "tables": tables,
        "assignments": statuses,
        "practice": {
            "column": "is_practice",
            "rule": "ratings and passages of practice cases are kept in the ratings and spans "
            "tables, flagged true, and left out of every analysis figure",
            "ratings": practice_ratings_count(reader_study=reader_study),
        },
        "analysis": {
            "n_ratings": results["n_ratings"],
            "n_cases": results["n_cases"],
            "n_readers": results["n_readers"],
            "rules": results["rules"],
            "bootstrap": results["bootstrap"],
        },
        "report_hash": {"algorithm": "sha256", "definition": HASH_DEFINITION},
        "answer_schema": answers.ANSWER_SCHEMA,
        "csv": {
            "encoding": "UTF-8 (with a byte order mark when asked: ?bom=1)",
            "line_break": "CRLF",
            "quoting": "every text value quoted, inner quotes doubled; NULL is an empty field",
            "timestamps": "ISO 8601 in UTC with microseconds (Parquet: timestamp[us, UTC])",
            "formula_neutralisation": {
                "rule": "a cell of these columns beginning with a trigger gets a leading '",
                "triggers": list(FORMULA_TRIGGERS),
                "columns": sorted(FREE_TEXT_COLUMNS),
                "parquet": "raw values, never neutralised",
            },
        },
    }


# --------------------------------------------------------------------------------------------
# One export, from any interface
# --------------------------------------------------------------------------------------------

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
}


def export_valid(dataset: str, fmt: str) -> bool:
    """Whether ``dataset`` exists in ``fmt``: tables as CSV or Parquet, the sidecar as JSON."""
    if dataset == ExportAudit.Dataset.SIDECAR:
        return fmt == ExportAudit.Format.JSON
    return dataset in TABLE_DATASETS and fmt in (ExportAudit.Format.CSV, ExportAudit.Format.PARQUET)


def export_filename(reader_study: ReaderStudy, dataset: str, fmt: str) -> str:
    return f"reader-study-{reader_study.public_id}-{dataset}.{fmt}"


def export_chunks(
    *,
    reader_study: ReaderStudy,
    dataset: str,
    fmt: str,
    on_done: Callable[[int], None],
    bom: bool = False,
    analysis: dict[str, Any] | None = None,
) -> Iterator[bytes]:
    """The bytes of one export of an (already authorised) study, block by block.

    ``bom``: start a CSV with a UTF-8 byte order mark (Excel then reads it as UTF-8).
    ``analysis``: the analysis parameters a sidecar describes.
    """
    if dataset == ExportAudit.Dataset.SIDECAR:
        sidecar = export_sidecar(reader_study=reader_study, analysis=analysis)
        on_done(1)
        return iter([json.dumps(sidecar, indent=2, ensure_ascii=False).encode("utf-8")])
    tidy = dataset_query(reader_study=reader_study, dataset=dataset)
    batches = rows.record_batches(tidy)
    if fmt == ExportAudit.Format.CSV:
        return csv_chunks(batches, tidy.columns, bom=bom, on_done=on_done)
    handle, count = parquet_temp_file(batches, columns=tidy.columns)
    on_done(count)
    return file_chunks(handle)


def export_response(
    *,
    user: AbstractBaseUser,
    reader_study: ReaderStudy,
    dataset: str,
    fmt: str,
    interface: str,
    bom: bool = False,
    analysis: dict[str, Any] | None = None,
) -> StreamingHttpResponse:
    """Audit, then stream one export as a download (block by block: memory stays flat)."""
    if not export_valid(dataset, fmt):
        raise Http404("No such export.")
    audit = export_audit_start(
        user=user, reader_study=reader_study, dataset=dataset, format=fmt, interface=interface
    )
    chunks = export_chunks(
        reader_study=reader_study,
        dataset=dataset,
        fmt=fmt,
        on_done=lambda n: export_audit_finish(audit=audit, row_count=n),
        bom=bom,
        analysis=analysis,
    )
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    filename = export_filename(reader_study, dataset, fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Exports carry the unblinding key: never let a shared cache keep one.
    response["Cache-Control"] = "private, no-store"
    return response
