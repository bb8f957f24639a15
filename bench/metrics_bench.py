"""Benchmark: weight-free report metrics on 10,000 pairs, and the metric-expert agreement table.

Usage: python bench/metrics_bench.py [--pairs 10000] [--cases 200] [--sources 3]
       [--resamples 2000] [--agreement-only]

Report pairs are synthesised from a small vocabulary of radiology sentences written here (no
dataset text): each candidate shares some sentences with its reference, drops some and adds
others, so BLEU, ROUGE-L and the labeler see realistic overlap. Prints the wall and CPU time of
BLEU-1...4, ROUGE-L and the CheXpert-style label F1 (scoring and corpus summary), then of the
agreement table (10 metrics x 5 expert outcomes, tau-b and Spearman with 2,000 case-bootstrap
resamples each) and of the source-ranking table the page shows beside it (the same cells).
Targets (issue 21): metrics < 30 s for 10,000 pairs; agreement table < 5 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.metrics import metric_create
from inference.metrics.agreement import agreement_table, source_ranking_table

SENTENCES = (
    "The lungs are clear.",
    "Heart size is normal.",
    "The cardiomediastinal silhouette is within normal limits.",
    "No pleural effusion or pneumothorax.",
    "No focal consolidation, pleural effusion, or pneumothorax.",
    "Mild cardiomegaly is unchanged.",
    "Small left pleural effusion with adjacent atelectasis.",
    "Bibasilar opacities may represent atelectasis or pneumonia.",
    "Mild interstitial pulmonary edema.",
    "Moderate right pleural effusion has increased since the prior study.",
    "Endotracheal tube terminates 4 cm above the carina.",
    "Right internal jugular central venous catheter tip in the mid SVC.",
    "Left PICC line tip projects over the cavoatrial junction.",
    "Sternotomy wires and mediastinal clips are intact.",
    "A 1.2 cm nodule in the right upper lobe is unchanged.",
    "Healed fracture of the left sixth rib.",
    "Pneumonia in the left lower lobe cannot be excluded.",
    "Small right apical pneumothorax.",
    "Pleural thickening at the left apex.",
    "Degenerative changes of the thoracic spine.",
    "Low lung volumes with crowding of the bronchovascular markings.",
    "The previously seen right effusion has resolved.",
    "IMPRESSION: No acute cardiopulmonary process.",
    "Widened mediastinum, possibly due to patient positioning.",
)


def synthesise(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        ref_idx = rng.choice(len(SENTENCES), size=rng.integers(3, 8), replace=False)
        keep = [i for i in ref_idx if rng.random() < 0.6]
        extra = rng.choice(len(SENTENCES), size=rng.integers(0, 3), replace=False)
        cand_idx = keep + [int(i) for i in extra if i not in keep]
        rng.shuffle(cand_idx)
        reference = "FINDINGS: " + " ".join(SENTENCES[i] for i in ref_idx)
        candidate = "FINDINGS: " + " ".join(SENTENCES[i] for i in cand_idx)
        pairs.append((candidate, reference))
    return pairs


def timed(label: str, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label:<40} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    return result, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument(
        "--agreement-only",
        action="store_true",
        help="score only the pairs the agreement table needs (the same first pairs)",
    )
    args = parser.parse_args()
    print(f"metrics bench: {os.cpu_count()} CPUs, numpy {np.__version__}")

    n_reports = args.cases * args.sources
    # synthesise() draws pair after pair from one stream: its first n pairs are the same for
    # any larger n, so the agreement inputs do not depend on --agreement-only.
    pairs = synthesise(n_reports if args.agreement_only else args.pairs)
    print(f"weight-free metrics, {len(pairs)} report pairs (target < 30 s in all):")
    total = 0.0
    values: dict[str, np.ndarray] = {}
    for name in ("bleu", "rouge_l", "chexpert_f1"):
        metric = metric_create(name)
        results, wall = timed(f"{name} score", lambda m=metric: m.score(pairs))
        summary, wall2 = timed(f"{name} corpus summary", lambda m=metric, r=results: m.summarise(r))
        total += wall + wall2
        print(f"    {', '.join(f'{k}={v:.4f}' for k, v in summary.items() if v is not None)}")
        for value_name in metric.value_names:
            values[value_name] = np.array([r["values"][value_name] for r in results])
    print(f"  {'all weight-free metrics':<40} {total:7.2f} s wall")

    rng = np.random.default_rng(1)
    metric_names = list(values)[:10]
    metrics = {name: values[name][:n_reports] for name in metric_names}
    quality = metrics["bleu_4"] + rng.normal(0, 0.1, n_reports)
    outcomes = {
        "equivalent_or_better": (quality > np.median(quality)).astype(float),
        "same_or_superior_management": (quality + rng.normal(0, 0.2, n_reports) > 0.2) * 1.0,
        "acceptability_level": np.round(np.clip(quality * 4, 0, 3)),
        "significant_errors": np.round(np.clip(3 - quality * 5, 0, None)),
        "radpeer_score": np.round(np.clip(3 - quality * 3, 1, 3)),
    }
    case_ids = np.repeat(np.arange(args.cases), args.sources)
    source_ids = np.tile(np.arange(args.sources), args.cases)
    print(
        f"agreement table: {len(metrics)} metrics x {len(outcomes)} outcomes, {n_reports} "
        f"reports in {args.cases} cases, {args.resamples} resamples (target < 5 s):"
    )
    rows, table_wall = timed(
        "tau-b + Spearman with bootstrap CIs",
        lambda: agreement_table(metrics, outcomes, case_ids, resamples=args.resamples),
    )
    first = rows[0]
    print(f"    e.g. {first['metric']} x {first['outcome']}: tau-b {first['kendall_tau_b']}")
    _, ranking_wall = timed(
        "source-ranking tau, every cell",
        lambda: source_ranking_table(
            metrics, outcomes, case_ids, source_ids, resamples=args.resamples
        ),
    )
    print(f"  {'both tables (what the page computes)':<40} {table_wall + ranking_wall:7.2f} s wall")


if __name__ == "__main__":
    main()
