"""``manage.py generate_reports --model NAME [--study UID ...]``: queue AI report generation
from the shell and follow it with a progress bar (or run it in this process with --inline)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from reviewapp.core.errors import ApplicationError
from reviewapp.generation import services
from reviewapp.generation.models import GenerationRun, ModelConfig


class Command(BaseCommand):
    help = "Generate AI reports for studies with a configured model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="ModelConfig name")
        parser.add_argument(
            "--study",
            action="append",
            default=[],
            help="StudyInstanceUID or study public id (repeatable); default: every study",
        )
        parser.add_argument(
            "--only-missing", action="store_true", help="skip studies this model already reported"
        )
        parser.add_argument(
            "--inline", action="store_true", help="generate here instead of on the worker queue"
        )
        parser.add_argument("--no-wait", action="store_true", help="queue and return at once")
        parser.add_argument("--timeout", type=float, default=0, help="stop waiting after N s")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = ModelConfig.objects.get(name=options["model"])
        except ModelConfig.DoesNotExist:
            names = ", ".join(ModelConfig.objects.values_list("name", flat=True)) or "none"
            raise CommandError(
                f"No model named {options['model']!r}; configured: {names}."
            ) from None
        try:
            created = services.generation_job_create_from_selection(
                user=None,
                model_config=config,
                study_refs=options["study"],
                only_missing=options["only_missing"],
                skip_unknown=True,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for missing in created.unknown:
            self.stderr.write(f"Study {missing}: not in the archive, skipped.")
        for study, why in created.skipped:
            self.stderr.write(f"Study {study.public_id}: skipped, {why}.")
        job = created.job
        runs = list(job.runs.values_list("pk", flat=True))
        self.stdout.write(f"Job {job.public_id}: {len(runs)} studies with {config.name}.")
        if options["inline"]:
            for run_pk in tqdm(runs, desc="generating", unit="study"):
                services.generation_run_execute(run_pk=run_pk)
        elif not options["no_wait"]:
            self._follow(job.pk, len(runs), options["timeout"])
        counts = services.job_counts(job)
        self.stdout.write(
            f"succeeded {counts['succeeded']}, failed {counts['failed']}, "
            f"queued {counts['queued']}, running {counts['running']}, "
            f"cancelled {counts['cancelled']}"
        )
        for run in job.runs.filter(status=GenerationRun.Status.FAILED).select_related("study"):
            self.stderr.write(f"Study {run.study.public_id} failed: {run.error_message}")

    def _follow(self, job_pk: int, total: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout if timeout > 0 else None
        with tqdm(total=total, desc="generating", unit="study") as bar:
            while True:
                done = GenerationRun.objects.filter(
                    job_id=job_pk, status__in=GenerationRun.FINISHED
                ).count()
                bar.update(done - bar.n)
                if done >= total:
                    return
                if deadline is not None and time.monotonic() > deadline:
                    self.stderr.write("Stopped waiting; the job goes on in the workers.")
                    return
                time.sleep(1)
