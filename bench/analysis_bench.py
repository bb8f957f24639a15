"""Benchmark: exports and the analysis page on 100k ratings x 5 questions in PostgreSQL.

Usage: python bench/analysis_bench.py [--ratings 20000 100000]

It works in a database of its own: BENCH_DATABASE_URL, or DATABASE_URL's database name with
"_analysis_bench" appended, created if missing, migrated and filled on the first run (COPY
into the application's tables: about a minute for 120k ratings), then reused.

Prints, per study size: CSV and Parquet export time and the export's peak memory (each in a
fresh process: peak RSS above the RSS just before the export); the analysis with 2,000
bootstrap resamples computed whole in one process; the page cold (its headline, while a Celery
worker started here computes the agreement CIs and plots), the time until the API answers
with the complete analysis, and the cached page. Beside the one-process time, the CPU time of
the web process and of its PostgreSQL backend: on a busy machine their sum is the steadier
figure.
Targets (issue 7): export < 5 s, analysis < 5 s, export memory flat in the number of rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import bench_database_use  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

READERS = 5
QUESTIONS = 5
OPTIONS_5 = ["ai_much_better", "ai_better", "similar", "original_better", "original_much_better"]

PROTOCOL = {
    "key": "bench_pairwise",
    "version": 1,
    "title": "Benchmark: five comparative questions",
    "mode": "pairwise",
    "questions": [
        {
            "id": f"q{i}",
            "type": "single_choice",
            "scope": "comparative",
            "prompt": f"Question {i}",
            "required": True,
            "options": [
                {"value": v, "axis": axis, "label": v}
                for v, axis in zip(OPTIONS_5, [2, 1, 0, -1, -2], strict=True)
            ]
            + [{"value": "neither_correct", "axis": None, "label": "X"}],
        }
        for i in range(1, QUESTIONS + 1)
    ],
    "outcomes": [
        {
            "id": "equivalent_or_better",
            "label": "equivalent or better",
            "question": "q1",
            "values": ["similar", "ai_better", "ai_much_better"],
        },
        {
            "id": "same_or_superior_management",
            "label": "same or superior management",
            "question": "q1",
            "values": ["similar", "ai_better", "ai_much_better", "original_better"],
        },
    ],
}


def _setup() -> None:
    import django

    django.setup()


def copy_create(model: Any, objects: list[Any]) -> list[Any]:
    """Insert model instances with PostgreSQL COPY; like bulk_create, about ten times faster.

    Primary keys come from the table's own sequence and every field is prepared as Django's
    INSERT prepares it (``pre_save`` then ``get_db_prep_save``: defaults, auto_now, JSON), so
    the rows are what the application would have written. Runs in the caller's transaction.
    """
    from django.db import connection

    if not objects:
        return objects
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objects)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    fields = meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    statement = f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN"
    with connection.connection.cursor() as cursor:
        # The history triggers (pgtrigger, pghistory) still record every row. They read two
        # settings inside an exception block that opens a subtransaction when one is unset;
        # 100k of those in one transaction make every later row slower. Setting both (no
        # trigger ignored; a history context as the application's writes have) avoids that.
        cursor.execute(
            "SELECT set_config('pgtrigger.ignore', '{}', true),"
            " set_config('pghistory.context_id', %s, true),"
            " set_config('pghistory.context_metadata', %s, true)",
            [str(uuid.uuid4()), json.dumps({"action": "analysis_bench_seed"})],
        )
    with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        for obj, pk in zip(objects, ids, strict=True):
            setattr(obj, meta.pk.attname, pk)
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
            obj._state.adding = False
            obj._state.db = connection.alias
    # Statistics for the rows just written, so the foreign-key checks of the next table's COPY
    # look them up by index: planned against an "empty" table they scan it for every row.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(meta.db_table)}")
    return objects


def _answers(picks: np.ndarray) -> dict[str, dict[str, str]]:
    """A rating's stored answers, shaped as the reading service stores them."""
    values = [*OPTIONS_5, "neither_correct"]
    return {
        f"q{q + 1}": {
            "question": f"q{q + 1}",
            "side": "",
            "code": "abcdef"[pick],
            "value": values[pick],
            "label": values[pick],
        }
        for q, pick in enumerate(picks)
    }


def _picks(rng: np.random.Generator, n_cases: int) -> np.ndarray:
    """(cases, readers, questions) answer indexes with case and reader effects.

    Each case has a true position on the 5-point scale and each reader a leaning, so readers
    agree more than chance (as real panels do) and the agreement figures are not all zero;
    about 3% of answers are "neither correct".
    """
    case_effect = rng.normal(0.0, 1.0, size=(n_cases, 1, 1))
    reader_effect = rng.normal(0.0, 0.4, size=(1, READERS, 1))
    noise = rng.normal(0.0, 0.7, size=(n_cases, READERS, QUESTIONS))
    picks = np.clip(np.rint(2.0 + case_effect + reader_effect + noise), 0, 4).astype(int)
    picks[rng.random(size=picks.shape) < 0.03] = 5
    return picks


def study_ensure(n_ratings: int) -> str:
    """Create (once) a pairwise study with n_ratings ratings (5 readers); return its id."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction

    from reviewapp.imaging.models import Study
    from reviewapp.reports.models import Report
    from reviewapp.studies.models import Assignment, Case, Rating, ReaderStudy, StudyReader

    call_command("migrate", verbosity=0)
    name = f"bench-{n_ratings}"
    existing = ReaderStudy.objects.filter(name=name).first()
    if (
        existing is not None
        and Rating.objects.filter(assignment__reader_study=existing).count() == n_ratings
    ):
        return str(existing.public_id)
    if existing is not None:
        raise SystemExit(f"{name} exists but is incomplete: drop the bench database and rerun")
    started = time.perf_counter()
    user_model = get_user_model()
    readers = []
    for r in range(READERS):
        user, _ = user_model.objects.get_or_create(username=f"bench-reader-{r}")
        readers.append(user)
    rng = np.random.default_rng(n_ratings)
    n_cases = n_ratings // READERS
    picks = _picks(rng, n_cases)
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    with transaction.atomic():
        study = ReaderStudy.objects.create(
            name=name,
            protocol=PROTOCOL,
            protocol_key=PROTOCOL["key"],
            protocol_version=1,
            status=ReaderStudy.Status.LOCKED,
        )
        for r, user in enumerate(readers):
            StudyReader.objects.create(reader_study=study, reader=user, cohort=f"C{r % 2}")
        imaging = copy_create(
            Study,
            [
                Study(
                    study_instance_uid=f"2.25.{uuid.uuid4().int}"[:64],
                    patient_pseudonym=f"B{i}",
                    modalities="CR",
                )
                for i in range(n_cases)
            ],
        )
        originals = copy_create(
            Report,
            [Report(study=s, kind="original", findings="No acute findings.") for s in imaging],
        )
        ais = copy_create(
            Report, [Report(study=s, kind="ai", findings="No acute disease.") for s in imaging]
        )
        cases = copy_create(
            Case,
            [
                Case(
                    reader_study=study,
                    imaging_study=s,
                    first_report=o,
                    second_report=a,
                    stratum="normal" if i % 2 == 0 else "abnormal",
                )
                for i, (s, o, a) in enumerate(zip(imaging, originals, ais, strict=True))
            ],
        )
        assignments = []
        for i, case in enumerate(cases):
            for r, user in enumerate(readers):
                side = "A" if (i + r) % 2 == 0 else "B"
                opened = t0 + timedelta(seconds=i)
                assignments.append(
                    Assignment(
                        reader_study=study,
                        case=case,
                        reader=user,
                        position=i + 1,
                        report_a=case.second_report if side == "A" else case.first_report,
                        report_b=case.first_report if side == "A" else case.second_report,
                        candidate_side=side,
                        status=Assignment.Status.SUBMITTED,
                        opened_at=opened,
                        first_answer_at=opened + timedelta(seconds=20),
                        submitted_at=opened + timedelta(seconds=90),
                        active_seconds=80.0,
                    )
                )
        copy_create(Assignment, assignments)
        copy_create(
            Rating,
            [
                Rating(
                    assignment=a,
                    answers=_answers(picks[k // READERS, k % READERS]),
                    source_a="ai" if a.candidate_side == "A" else "original",
                    source_b="original" if a.candidate_side == "A" else "ai",
                    submitted_at=a.submitted_at,
                    active_seconds=80.0,
                )
                for k, a in enumerate(assignments)
            ],
        )
    print(f"  created {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return str(study.public_id)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _database_cpu() -> float:
    """CPU seconds used so far by this process's PostgreSQL backend (NaN if not local).

    Most of an export's work happens in PostgreSQL, so on a busy machine its CPU time, with
    this process's, says more than the wall time does.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak() -> None:
    # Start the high-water mark from now (Linux >= 4.0). ru_maxrss cannot be used: a child
    # started by a parent that just filled the database inherits the parent's peak.
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def child_export(study_id: str, fmt: str) -> dict[str, float]:
    """In a fresh process: time one export to /dev/null and its peak memory above baseline."""
    from django.contrib.auth import get_user_model

    from reviewapp.analysis.exports import export_response
    from reviewapp.analysis.models import ExportAudit
    from reviewapp.studies.models import ReaderStudy

    study = ReaderStudy.objects.get(public_id=study_id)
    user, _ = get_user_model().objects.get_or_create(username="bench-analyst")
    import pyarrow.parquet  # noqa: F401  (loaded before the baseline, like a warm server)

    baseline = _status_kib("VmRSS")
    database_cpu = _database_cpu()
    _reset_peak()
    started = time.perf_counter()
    cpu = time.process_time()
    response = export_response(
        user=user, reader_study=study, dataset="ratings", fmt=fmt, interface="command"
    )
    size = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response:
            size += len(chunk)
            sink.write(chunk)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = _status_kib("VmHWM")
    database_cpu = _database_cpu() - database_cpu
    rows = ExportAudit.objects.order_by("-created_at").values_list("row_count", flat=True)[0]
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "database_cpu_seconds": database_cpu,
        "peak_mib_above_baseline": (peak - baseline) / 1024,
        "rows": float(rows or 0),
        "mib": size / 2**20,
    }


def _worker_start() -> subprocess.Popen:
    """A Celery worker on the bench database and Redis, as `make serve` runs one."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "reviewapp", "worker", "-Q", "default",
         "--concurrency", "1", "-n", f"analysis-bench-{os.getpid()}@%h",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the pool child is stopped with it
    )  # fmt: skip


def _until_complete(client: Any, api: str, params: dict[str, Any], timeout: float) -> float:
    """Poll the analysis API as the page does until the complete answer; seconds taken."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        response = client.get(api, params)
        if response.status_code == 200:
            return time.perf_counter() - started
        assert response.status_code == 202, response.status_code
        time.sleep(0.05)
    raise SystemExit(f"the analysis did not complete within {timeout:.0f} s")


def child_analysis(study_id: str) -> dict[str, float]:
    import signal

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
    from django.urls import reverse

    from reviewapp.analysis.results import analysis_results
    from reviewapp.core.roles import Role
    from reviewapp.studies.models import ReaderStudy

    study = ReaderStudy.objects.get(public_id=study_id)
    user, _ = get_user_model().objects.get_or_create(username="bench-analyst")
    user.groups.add(Group.objects.get_or_create(name=Role.ANALYST.value)[0])
    client = Client()
    client.force_login(user)
    url = reverse("analysis:study", args=[study_id])
    api = reverse("api-analysis-study", kwargs={"public_id": study_id})
    worker = _worker_start()
    try:
        # A running server and worker have their libraries loaded: time the work, not the
        # first imports (the warm-up page also waits for the worker to come up).
        _forget_analyses()
        assert client.get(url, {"resamples": 100}).status_code == 200
        _until_complete(client, api, {"resamples": 100}, timeout=600)
        # The whole analysis in one process: what the page cost before the worker took the
        # agreement CIs and figures.
        _forget_analyses()
        database_cpu = _database_cpu()
        started = time.perf_counter()
        cpu = time.process_time()
        analysis_results(reader_study=study, n_resamples=2000, with_plots=True)
        compute = time.perf_counter() - started
        cpu = time.process_time() - cpu
        database_cpu = _database_cpu() - database_cpu
        # Cold, as after a new rating: the page answers with the headline and starts the
        # task; the complete answer is there when the API says 200.
        _forget_analyses()
        started = time.perf_counter()
        cpu_page = time.process_time()
        response = client.get(url, {"resamples": 2000})
        page = time.perf_counter() - started
        cpu_page = time.process_time() - cpu_page
        assert response.status_code == 200, response.status_code
        assert b'id="analysis-pending"' in response.content
        complete = page + _until_complete(client, api, {"resamples": 2000}, timeout=600)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    started = time.perf_counter()
    response = client.get(url, {"resamples": 2000})
    cached_page = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    assert b'id="agreement"' in response.content
    return {
        "compute_seconds": compute,
        "compute_cpu_seconds": cpu,
        "compute_database_cpu_seconds": database_cpu,
        "page_seconds": page,
        "page_cpu_seconds": cpu_page,
        "complete_seconds": complete,
        "cached_page_seconds": cached_page,
    }


def child_page(study_id: str) -> dict[str, float]:
    """The analysis page in a process that did not compute it (another web process)."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-analyst"))
    url = reverse("analysis:study", args=[study_id])
    started = time.perf_counter()
    response = client.get(url, {"resamples": 2000})
    assert response.status_code == 200, response.status_code
    return {"seconds": time.perf_counter() - started}


def _forget_analyses() -> None:
    """Drop the cached analyses, and nothing else: on Redis the cache shares its server (and
    perhaps its database) with the Celery broker and the channel layer, which a clear() would
    empty too."""
    from django.core.cache import cache

    client = getattr(getattr(cache, "_cache", None), "get_client", None)
    if client is None:
        cache.clear()
        return
    redis = client(write=True)
    keys = list(redis.scan_iter(cache.make_key("analysis:results:*")))
    if keys:
        redis.delete(*keys)


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_ALLOWED_HOSTS": "testserver,localhost"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--child", nargs="*")
    parser.add_argument("--analysis-only", action="store_true", help="skip the exports")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL is needed: the page's worker task and cache use Redis")
    if not args.child:
        # Children inherit DATABASE_URL from the parent, already pointed at the bench database.
        database = bench_database_use("_analysis_bench")
    _setup()
    if args.child:
        kind, study_id, *rest = args.child
        children = {"export": lambda: child_export(study_id, rest[0])}
        children["analysis"] = lambda: child_analysis(study_id)
        children["page"] = lambda: child_page(study_id)
        result = children[kind]()
        print(json.dumps(result))
        return
    print(
        f"analysis bench: {READERS} readers, {QUESTIONS} questions per rating, "
        f"PostgreSQL database {database}"
    )
    print(f"  load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for n in args.ratings:
        study_id = study_ensure(n)
        print(f"{n} ratings ({n * QUESTIONS} tidy rows):")
        for fmt in () if args.analysis_only else ("csv", "parquet"):
            r = run_child("export", study_id, fmt)
            print(
                f"  export {fmt:7s}: {r['seconds']:.2f} s "
                f"(CPU: web process {r['cpu_seconds']:.2f} s, "
                f"PostgreSQL {r['database_cpu_seconds']:.2f} s), {r['rows']:.0f} rows, "
                f"{r['mib']:.1f} MiB, peak memory +{r['peak_mib_above_baseline']:.0f} MiB "
                "(target < 5 s, flat)"
            )
        r = run_child("analysis", study_id)
        print(
            f"  analysis (2,000 resamples), all in one process: {r['compute_seconds']:.2f} s "
            f"(CPU: web process {r['compute_cpu_seconds']:.2f} s, "
            f"PostgreSQL {r['compute_database_cpu_seconds']:.2f} s)"
        )
        print(
            f"  page cold: headline {r['page_seconds']:.2f} s "
            f"(CPU {r['page_cpu_seconds']:.2f} s), complete (agreement CIs, plots from the "
            f"worker) {r['complete_seconds']:.2f} s, cached page "
            f"{r['cached_page_seconds']:.2f} s (target < 5 s)"
        )
        r = run_child("page", study_id)
        print(f"  the same page in another process (shared cache): {r['seconds']:.2f} s")


if __name__ == "__main__":
    main()
