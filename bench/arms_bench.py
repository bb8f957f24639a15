"""Benchmark: reading lists for a multi-arm study (5,000 cases x 3 arms x 10 readers).

Usage: python bench/arms_bench.py [--studies 5000] [--readers 10] [--k 3] [--skip-db]

1. The draw alone (``studies.reading_lists.reading_lists_draw``: loads, sides, shuffles and the
   gap between reads of one imaging study), k readers per case per arm and every reader
   reading everything.
2. The whole service (``assignments_generate``: the draw plus writing every assignment row) in
   a database of its own: BENCH_DATABASE_URL, or DATABASE_URL's database name with
   "_arms_bench" appended, created if missing and migrated; each run seeds the imaging studies
   and reports it needs with COPY and builds the three-arm study through the services.

3. The arms analysis (``analysis.arms.arms_results_from_frame``: rates per arm and source with
   their intervals, paired differences between arms, the win matrix, Bradley-Terry with its
   bootstrap, and the figures) on a ratings frame of every reader reading every case of every
   arm (150,000 ratings by default), built in memory: the computation without the database
   read, which ``analysis_bench.py`` times.

Targets (issue 20): reading lists for 5,000 cases x 3 arms x 10 readers in under 10 s; the
analysis of a 3-arm study with 150k ratings in under 5 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import bench_database_use  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")


def draw_only(*, studies: int, readers: int, k: int | None) -> float:
    from reviewapp.studies.reading_lists import CaseKey, reading_lists_draw

    cases = [
        CaseKey(case=s * 3 + arm, imaging=s, arm=arm) for s in range(studies) for arm in range(3)
    ]
    started = time.perf_counter()
    lists = reading_lists_draw(
        cases=cases,
        readers=list(range(readers)),
        reads_per_case=k,
        pairwise=True,
        gap=1,
        seed=20261207,
    )
    elapsed = time.perf_counter() - started
    reads = sum(len(v) for v in lists.values())
    print(f"draw only, k={k or 'all'}: {reads:,} reads in {elapsed:.2f} s")
    return elapsed


def analysis_only(*, studies: int, readers: int) -> float:
    """The arms analysis on ``studies`` x 3 arms x ``readers`` ratings of Med-Gemini's scale."""
    import django

    django.setup()
    import numpy as np
    import pandas as pd

    from reviewapp.analysis.arms import arms_results_from_frame
    from reviewapp.studies import protocols

    protocol = protocols.protocol_template("medgemini_cxr")
    question = next(q for q in protocol["questions"] if q["id"] == "comparison")
    values = [o["value"] for o in question["options"]]
    outcomes = {
        f"outcome_{o['id']}": protocols.outcome_values(protocol, o["id"])
        for o in protocol["outcomes"]
    }
    rng = np.random.default_rng(20261207)
    n = studies * 3 * readers
    study = np.repeat(np.arange(studies), 3 * readers)
    arm = np.tile(np.repeat(np.arange(1, 4), readers), studies)
    reader = np.tile(np.arange(readers), studies * 3)
    # Model A better than the original, model B a little worse, A better than B.
    weights = {1: [0.1, 0.25, 0.35, 0.15, 0.05, 0.1], 2: [0.05, 0.15, 0.35, 0.25, 0.1, 0.1],
               3: [0.1, 0.3, 0.3, 0.2, 0.05, 0.05]}  # fmt: skip
    answer = np.empty(n, dtype=object)
    for position, p in weights.items():
        chosen = arm == position
        answer[chosen] = rng.choice(values, size=int(chosen.sum()), p=p)
    sources = {1: ("orig", "Original", "a", "model A"), 2: ("orig", "Original", "b", "model B"),
               3: ("a", "model A", "b", "model B")}  # fmt: skip
    first_id = np.array([sources[a][0] for a in arm])
    second_id = np.array([sources[a][2] for a in arm])
    frame = pd.DataFrame(
        {
            "rating": np.arange(n).astype(str),
            "case": (study * 3 + arm).astype(str),
            "imaging_study": study.astype(str),
            "reader": np.char.add("R", reader.astype(str)),
            "question": "comparison",
            "side": "",
            "answer_value": answer,
            "candidate_side": rng.choice(["A", "B"], size=n),
            "arm": arm,
            "arm_label": np.array([f"{sources[a][3]} vs {sources[a][1]}" for a in arm]),
            "first_source_id": first_id,
            "first_source_name": np.array([sources[a][1] for a in arm]),
            "second_source_id": second_id,
            "second_source_name": np.array([sources[a][3] for a in arm]),
            "row_source_id": second_id,
            "row_source_name": np.array([sources[a][3] for a in arm]),
        }
    )
    for column, positive in outcomes.items():
        frame[column] = frame["answer_value"].isin(positive).astype(float)
    started = time.perf_counter()
    results = arms_results_from_frame(
        protocol=protocol, frame=frame, n_resamples=1000, seed=1, with_plots=True
    )
    elapsed = time.perf_counter() - started
    print(
        f"arms analysis: {n:,} ratings, {len(results['rates'])} rates, "
        f"{len(results['differences'])} differences, Bradley-Terry over "
        f"{len(results['head_to_head']['bradley_terry'])} sources, {len(results['plots'])} "
        f"figures in {elapsed:.2f} s"
    )
    return elapsed


def with_database(*, studies: int, readers: int, ks: list[int | None]) -> None:
    name = bench_database_use("_arms_bench")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, check=True
    )
    import django

    django.setup()
    from django.db import transaction

    from bench.analysis_bench import copy_create
    from reviewapp.accounts.services import user_create
    from reviewapp.core.roles import Role
    from reviewapp.imaging.models import Study
    from reviewapp.reports.models import Report, ReportSource
    from reviewapp.reports.services import report_source_external_save, report_source_original
    from reviewapp.studies import services
    from reviewapp.studies.models import ReaderStudy

    print(f"database {name}: seeding {studies:,} imaging studies with 3 reports each")
    run = uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex

    def person(username: str, role: Role):  # type: ignore[no-untyped-def]
        return user_create(username=username, password=password, roles=[role], check_password=False)

    coordinator = person(f"bench-coord-{run}", Role.COORDINATOR)
    panel = [(person(f"bench-reader-{run}-{i}", Role.READER), "") for i in range(readers)]
    original = report_source_original()
    model_a = report_source_external_save(name=f"bench-a-{run}")
    model_b = report_source_external_save(name=f"bench-b-{run}")
    with transaction.atomic():
        imaging = copy_create(
            Study,
            [
                Study(
                    study_instance_uid=f"2.25.{uuid.uuid4().int}",
                    patient_pseudonym=f"B{i}",
                    modalities="CR",
                )
                for i in range(studies)
            ],
        )
        sources: list[ReportSource] = [original, model_a, model_b]
        copy_create(
            Report,
            [
                Report(
                    study=study,
                    kind="original" if source == original else "ai",
                    source=source,
                    findings=f"Lungs are clear {i}.",
                )
                for i, study in enumerate(imaging)
                for source in sources
            ],
        )
    for k in ks:
        study = services.reader_study_create(
            user=coordinator, name=f"arms bench {run} k={k}", protocol_key="medgemini_cxr"
        )
        services.arms_set(
            reader_study=study,
            design=ReaderStudy.Design.CHOSEN_PAIRS,
            pairs=[(original, model_a), (original, model_b), (model_a, model_b)],
        )
        started = time.perf_counter()
        services.cases_add(reader_study=study, imaging_studies=imaging)
        cases_s = time.perf_counter() - started
        services.panel_set(reader_study=study, readers=panel)
        started = time.perf_counter()
        created = services.assignments_generate(reader_study=study, reads_per_case=k, seed=7)
        elapsed = time.perf_counter() - started
        print(
            f"service, k={k or 'all'}: {study.cases.count():,} cases added in {cases_s:.2f} s; "
            f"{created:,} assignments drawn and written in {elapsed:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=5000)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--skip-db", action="store_true", help="time the draw only")
    args = parser.parse_args()
    for k in (args.k, None):
        draw_only(studies=args.studies, readers=args.readers, k=k)
    analysis_only(studies=args.studies, readers=args.readers)
    if not args.skip_db:
        with_database(studies=args.studies, readers=args.readers, ks=[args.k, None])


if __name__ == "__main__":
    main()
