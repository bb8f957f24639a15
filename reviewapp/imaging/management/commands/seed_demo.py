"""``manage.py seed_demo``: demo users, the three sample studies and their original reports.

Safe to run on every start (``make demo`` does): users, studies and reports are created once
and left alone afterwards. Passwords are random per installation, kept in
``RADREVIEW_DATA_DIR/demo_logins.json`` and printed on every run so the demo can be logged into.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from reviewapp.accounts.services import roles_ensure, user_create
from reviewapp.core.roles import Role
from reviewapp.imaging.models import ImportBatch, Study
from reviewapp.imaging.services import import_batch_create, import_batch_run
from reviewapp.imaging.types import IncomingFile
from reviewapp.reports.services import report_original_upsert

DEMO_USERS: list[tuple[str, Role]] = [
    ("reader1", Role.READER),
    ("reader2", Role.READER),
    ("coordinator", Role.COORDINATOR),
    ("analyst", Role.ANALYST),
    ("admin", Role.ADMIN),
]

SAMPLES = Path(settings.BASE_DIR) / "sampledata"

# Demo report texts written for this project (not taken from any dataset). They describe
# plausible studies of these kinds; they are not readings of these particular images.
DEMO_REPORTS: dict[str, dict[str, str]] = {
    "cxr/nema_wg04_RG1_chest_PA_J2KI.dcm": {
        "stratum": "normal",
        "findings": (
            "PA view of the chest. The trachea is midline. The cardiomediastinal silhouette is "
            "within normal limits for size and contour. The lungs are well expanded and clear, "
            "without focal consolidation, pleural effusion or pneumothorax. The pulmonary "
            "vasculature is normal. No acute osseous abnormality is seen."
        ),
        "impression": "No acute cardiopulmonary abnormality.",
    },
    "cxr/siim_nihcxr14_chest_PA_jpeg.dcm": {
        "stratum": "abnormal",
        "findings": (
            "PA view of the chest. Patchy airspace opacity in the right lower zone, obscuring "
            "the medial right hemidiaphragm, with blunting of the right costophrenic angle "
            "suggesting a small pleural effusion. The left lung is clear. Heart size is at the "
            "upper limit of normal. No pneumothorax."
        ),
        "impression": (
            "Right lower lobe airspace opacity with a small right pleural effusion, in keeping "
            "with pneumonia in the appropriate clinical setting. Follow-up radiograph after "
            "treatment is suggested to document resolution."
        ),
    },
    "ct/lung_pet_ct_dx_A0002_thorax": {
        "stratum": "abnormal",
        "findings": (
            "Axial CT images of the thorax. There is a lobulated soft-tissue mass in the right "
            "upper lobe measuring approximately 4.1 x 3.5 cm, with spiculated margins and "
            "abutment of the posterior pleura without definite chest wall invasion. Enlarged "
            "right hilar and subcarinal lymph nodes, the largest 1.6 cm in short axis. No "
            "pleural or pericardial effusion. The left lung is clear. Mild centrilobular "
            "emphysema in both upper lobes. No destructive osseous lesion in the imaged skeleton."
        ),
        "impression": (
            "1. Spiculated right upper lobe mass, highly suspicious for primary lung carcinoma. "
            "2. Right hilar and subcarinal lymphadenopathy, suspicious for nodal metastases. "
            "Recommend tissue sampling and staging with PET-CT."
        ),
    },
}


class Command(BaseCommand):
    help = "Create demo users and import the sample studies with their original reports."

    def handle(self, *args: Any, **options: Any) -> None:
        logins = self._users()
        studies = self._studies()
        reports = self._reports(studies)
        self.stdout.write("\nDemo logins (also in demo_logins.json in the data folder):")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {logins[username]:<24} ({role.label})")
        self.stdout.write(
            f"\nArchive: {Study.objects.count()} studies; demo studies: {len(studies)}; "
            f"original reports created: {reports}.\n"
        )

    def _users(self) -> dict[str, str]:
        path = Path(settings.DATA_DIR) / "demo_logins.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        changed = False
        roles_ensure()
        user_model = get_user_model()
        for username, role in DEMO_USERS:
            fresh = username not in stored
            if fresh:
                stored[username] = secrets.token_urlsafe(12)
                changed = True
            user = user_model.objects.filter(username=username).first()
            if user is None:
                user_create(
                    username=username, password=stored[username], roles=[role], check_password=False
                )
            elif fresh:
                # The logins file was lost: give the existing demo user the new password.
                user.set_password(stored[username])
                user.save(update_fields=["password"])
        if changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(stored, indent=2))
            path.chmod(0o600)
        return stored

    def _studies(self) -> dict[str, Study]:
        files: list[IncomingFile] = []
        for key in DEMO_REPORTS:
            source = SAMPLES / key
            if source.is_dir():
                files.extend(
                    IncomingFile(name=f"{key}/{p.name}", path=p)
                    for p in sorted(source.glob("*.dcm"))
                )
            else:
                files.append(IncomingFile(name=key, path=source))
        batch = import_batch_create(
            source=ImportBatch.Source.COMMAND, created_by=None, files_total=len(files)
        )
        outcomes = import_batch_run(batch=batch, files=files)
        counts = Counter(o.status for o in outcomes)
        self.stdout.write(
            f"Sample images: {counts['imported']} imported, {counts['duplicate']} already there, "
            f"{counts['quarantined'] + counts['rejected']} refused."
        )
        for outcome in outcomes:
            if outcome.status in ("rejected", "quarantined"):
                self.stdout.write(f"  {outcome.status}: {outcome.name}: {outcome.reason}")
        studies: dict[str, Study] = {}
        for outcome in outcomes:
            if not outcome.study_instance_uid:
                continue
            key = next(
                k for k in DEMO_REPORTS if outcome.name == k or outcome.name.startswith(k + "/")
            )
            studies[key] = Study.objects.get(study_instance_uid=outcome.study_instance_uid)
        return studies

    def _reports(self, studies: dict[str, Study]) -> int:
        created = 0
        with transaction.atomic():
            for key, study in studies.items():
                if study.reports.filter(kind="original").exists():  # type: ignore[attr-defined]
                    continue  # a coordinator may have replaced it: leave theirs
                text = DEMO_REPORTS[key]
                report_original_upsert(
                    study=study,
                    findings=text["findings"],
                    impression=text["impression"],
                    stratum=text["stratum"],
                    source_note="demo seed",
                )
                created += 1
        return created
