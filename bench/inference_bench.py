"""Report-generation benchmark.

1. Pipeline overhead: the same studies through the whole pipeline (job row, Redis queue, a real
   Celery worker process, inputs loaded from the archive, report and provenance stored,
   progress published) against calling the backend directly in a loop, with a tiny
   random-weight image-text-to-text model on CPU. Prints both per-study times and the ratio;
   the target is an overhead under 10%.
2. The retrieval baseline over an archive of N studies (default 1,000): the one-off cost of
   describing every archived study, then the time per generated study once described.

Run: ``DATABASE_URL=... REDIS_URL=... python bench/inference_bench.py [--studies 20]
[--archive 1000]``. It creates and drops its own throwaway database and data folder; point
REDIS_URL at a Redis database no live worker listens on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA_DIR = Path(tempfile.mkdtemp(prefix="radreview-bench-"))
os.environ["RADREVIEW_DATA_DIR"] = str(DATA_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ["HF_HUB_OFFLINE"] = "1"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=20, help="studies in the overhead run")
    parser.add_argument("--archive", type=int, default=1000, help="archive size for retrieval")
    parser.add_argument("--queries", type=int, default=20, help="retrieval studies timed")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3, help="alternating overhead rounds")
    parser.add_argument("--skip-retrieval", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    if not settings.REDIS_URL:
        sys.exit("REDIS_URL must be set: the pipeline run goes through a real Redis queue.")
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    # Its own name, so a benchmark never clobbers the test suite's database.
    connection.settings_dict["TEST"]["NAME"] = f"bench_{old_name}"
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"throwaway database {test_name}, data in {DATA_DIR}")
    try:
        overhead(args, test_name)
        if not args.skip_retrieval:
            retrieval(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    return 0


def _archive(count: int, *, with_reports: bool, mixed: bool = True) -> list:
    from tests.generation.conftest import CXR_J2K, CXR_JPEG, archive_study

    studies = []
    for i in range(count):
        files = [CXR_J2K if mixed and i % 2 else CXR_JPEG]
        kwargs = {"findings": f"Bench findings {i}.", "impression": "None."} if with_reports else {}
        studies.append(archive_study(files, **kwargs))
    return studies


def _worker(test_name: str) -> subprocess.Popen:
    from django.db import connection

    params = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{test_name}"
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "reviewapp",
            "worker",
            "-Q",
            "default,gpu",
            "--concurrency",
            "1",
            "-n",
            "bench@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )


def _stop(worker: subprocess.Popen) -> None:
    # SIGTERM to the main process only: a warm shutdown that lets the pool child exit by
    # itself (signalling the whole group kills the child and logs a lost worker).
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def _wait_job(job, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
    from reviewapp.generation.models import GenerationRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Seldom: the worker shares the CPUs with this loop. The timing comes from the rows.
        time.sleep(0.25)
        if not job.runs.exclude(status__in=GenerationRun.FINISHED).exists():
            failed = list(job.runs.filter(status="failed").values_list("error_message", flat=True))
            if failed:
                sys.exit(f"runs failed: {failed[:3]}")
            return
    sys.exit("timed out waiting for the worker")


@dataclass
class PipelineRound:
    per_study: float  # wall time from queueing the job to its last report stored, per study
    parts: dict[str, float]  # mean seconds per study, from the runs' records


def _pipeline_round(config, studies: list) -> PipelineRound:  # type: ignore[no-untyped-def]
    from django.db.models import Max
    from django.utils import timezone

    from reviewapp.generation import services

    queued = timezone.now()
    job = services.generation_job_create(user=None, model_config=config, studies=studies).job
    _wait_job(job)
    # The run rows say when the last report was stored, so this loop's polling adds nothing.
    last_stored = job.runs.aggregate(last=Max("finished_at"))["last"]
    per_study = (last_stored - queued).total_seconds() / len(studies)
    sums: dict[str, float] = {}
    for record in job.runs.values_list("provenance", flat=True):
        timings = record["timings_s"]
        call = timings["backend_call"]
        for part, seconds in (
            ("backend.generate, as in the direct loop", call),
            ("  of which preprocess (read, decode, window, resize)", timings["preprocess"]),
            ("  of which model.generate", timings["generate"]),
            ("lock + claim (commit, progress event)", timings["pipeline_claim"]),
            ("inputs from the database", timings["pipeline_inputs"]),
            ("record assembly", timings["total"] - timings["pipeline_inputs"] - call),
        ):
            sums[part] = sums.get(part, 0.0) + seconds
    parts = {part: total / len(studies) for part, total in sums.items()}
    counted = sum(v for k, v in parts.items() if not k.startswith(" "))
    parts["store + ack + broker hand-off (the rest)"] = per_study - counted
    return PipelineRound(per_study=per_study, parts=parts)


def overhead(args: argparse.Namespace, test_name: str) -> None:
    from inference.backends import backend_get
    from inference.types import GenerationRequest
    from reviewapp.generation import services
    from reviewapp.generation.inputs import study_input_build
    from reviewapp.generation.models import ModelConfig
    from tests.inference.tiny_models import build_llava

    model_dir = build_llava(DATA_DIR / "tiny-llava")
    params = {"max_new_tokens": args.max_new_tokens, "do_sample": False}
    config = ModelConfig.objects.create(
        name="tiny-llava", backend="transformers", location=str(model_dir), parameters=params
    )
    studies = _archive(args.studies + 1, with_reports=False)
    warm, timed = studies[0], studies[1:]

    # The direct loop: the same backend, on the same studies, with the same request the run
    # service builds (prompt, parameters, seed); the backend reads and preprocesses the DICOM
    # files itself in both. What the pipeline adds is everything around backend.generate.
    backend = backend_get(kind="transformers", location=str(model_dir))
    inputs = [study_input_build(study=s) for s in timed]
    requests = [
        GenerationRequest(study=i, prompt_template=config.prompt_cxr, params=params, seed=0)
        for i in inputs
    ]
    backend.generate(requests[0])  # load the model, as the worker's warm-up job does

    def direct_loop() -> float:
        started = time.perf_counter()
        for request in requests:
            backend.generate(request)
        return (time.perf_counter() - started) / len(requests)

    worker = _worker(test_name)
    directs: list[float] = []
    rounds: list[PipelineRound] = []
    try:
        job = services.generation_job_create(user=None, model_config=config, studies=[warm]).job
        _wait_job(job)  # the worker has started and loaded the model
        # The machine may be shared: alternate the two so both see the same load, and take
        # the median round of each. The idle worker waits on Redis and uses no CPU.
        for _ in range(args.rounds):
            directs.append(direct_loop())
            rounds.append(_pipeline_round(config, timed))
    finally:
        _stop(worker)
    direct = statistics.median(directs)
    pipeline_round = sorted(rounds, key=lambda r: r.per_study)[len(rounds) // 2]
    pipeline = pipeline_round.per_study
    backend_in_runs = pipeline_round.parts["backend.generate, as in the direct loop"]
    print(
        f"\n== pipeline overhead, tiny image-text-to-text model on CPU, {len(timed)} CXR studies,"
        f" median of {args.rounds} alternating rounds"
    )
    print(f"direct backend.generate loop : {direct * 1000:8.1f} ms/study")
    print(f"queue + worker + store       : {pipeline * 1000:8.1f} ms/study")
    print(f"ratio pipeline/direct        : {pipeline / direct:8.3f}")
    print(f"overhead                     : {100 * (pipeline / direct - 1):8.1f} %  (target < 10%)")
    print(f"backend time inside the runs : {backend_in_runs * 1000:8.1f} ms/study")
    inside_pct = 100 * (pipeline / backend_in_runs - 1)
    print(
        f"pipeline / backend-in-runs   : {pipeline / backend_in_runs:8.3f}"
        f"  (overhead {inside_pct:.1f}%)"
    )
    print("where a study's time goes in the pipeline (median round, mean per study):")
    for part, seconds in pipeline_round.parts.items():
        print(f"  {part:54s} {seconds * 1000:7.1f} ms")
    print(f"rounds, direct   : {', '.join(f'{d * 1000:.0f}' for d in directs)} ms/study")
    print(f"rounds, pipeline : {', '.join(f'{r.per_study * 1000:.0f}' for r in rounds)} ms/study")
    print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")


def retrieval(args: argparse.Namespace) -> None:
    from reviewapp.generation import services
    from reviewapp.generation.inputs import retrieval_corpus_build
    from reviewapp.generation.models import ModelConfig

    started = time.perf_counter()
    # One transfer syntax (baseline JPEG) so the figures are about retrieval, not JPEG 2000.
    archive = _archive(args.archive, with_reports=True, mixed=False)
    stored = time.perf_counter() - started
    started = time.perf_counter()
    corpus = retrieval_corpus_build(kind="CXR")
    describe = time.perf_counter() - started
    assert len(corpus) == args.archive
    config = ModelConfig.objects.get(name="retrieval-baseline")
    queries = archive[: args.queries]
    job = services.generation_job_create(user=None, model_config=config, studies=queries).job
    runs = list(job.runs.values_list("pk", flat=True))
    started = time.perf_counter()
    for run_pk in runs:
        assert services.generation_run_execute(run_pk=run_pk) == "succeeded"
    per_study = (time.perf_counter() - started) / len(runs)
    started = time.perf_counter()
    for _ in range(5):
        retrieval_corpus_build(kind="CXR")
    corpus_load = (time.perf_counter() - started) / 5
    print(f"\n== retrieval baseline over {args.archive} archived CXR studies")
    print(f"archiving (bench setup)          : {stored:8.1f} s")
    each = describe / args.archive * 1000
    print(f"describing every study, one-off  : {describe:8.1f} s ({each:.1f} ms/study)")
    print(f"loading the described corpus     : {corpus_load * 1000:8.1f} ms per run")
    print(f"generate, per study (inline run) : {per_study * 1000:8.1f} ms/study ({len(runs)} runs)")


if __name__ == "__main__":
    sys.exit(main())
