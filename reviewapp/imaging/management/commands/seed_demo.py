"""``manage.py seed_demo``: demo users, the sample studies (chest radiographs and two chest
CTs) with their original reports, and two rated reader studies to analyse.

Safe to run on every start (``make demo`` does): users, studies, reports and reader studies
are created once and left alone afterwards. Passwords are random per installation, kept in
``RADREVIEW_DATA_DIR/demo_logins.json`` and printed on every run so the demo can be logged into.
"""

from __future__ import annotations

import datetime
import json
import secrets
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from pydicom.uid import generate_uid

from reviewapp.accounts.services import roles_ensure, user_create
from reviewapp.core.roles import Role
from reviewapp.imaging.ingest.services import (
    import_batch_create,
    import_batch_run,
    instance_quarantine_approve,
)
from reviewapp.imaging.ingest.types import IncomingFile
from reviewapp.imaging.models import ImportBatch, Instance, Study
from reviewapp.reports.services import report_original_upsert
from reviewapp.studies.demo import demo_studies_seed

DEMO_USERS: list[tuple[str, Role]] = [
    ("reader1", Role.READER),
    ("reader2", Role.READER),
    ("reader3", Role.READER),
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
    "ct/second-study": {
        "stratum": "abnormal",
        "findings": (
            "Axial CT images of the thorax, compared with the prior examination. The right upper "
            "lobe mass now measures approximately 3.2 x 2.8 cm, previously 4.1 x 3.5 cm, with "
            "persistent spiculated margins. The right hilar node has decreased to 0.9 cm in "
            "short axis; the subcarinal node is no longer enlarged. No new pulmonary nodule. No "
            "pleural effusion. Stable mild centrilobular emphysema."
        ),
        "impression": (
            "Interval decrease in size of the right upper lobe mass and of the right hilar and "
            "subcarinal lymph nodes, consistent with treatment response. No new disease."
        ),
    },
    # Radiographs of new demo patients: the two sample images under new UIDs (see DERIVED).
    "cxr/derived-1": {
        "stratum": "normal",
        "findings": (
            "PA view of the chest. The heart is normal in size and the mediastinal contours are "
            "normal. The lungs are clear. No pleural effusion or pneumothorax. The visualised "
            "bones are unremarkable."
        ),
        "impression": "Normal chest radiograph.",
    },
    "cxr/derived-2": {
        "stratum": "abnormal",
        "findings": (
            "PA view of the chest. The heart is mildly enlarged. There is upper lobe venous "
            "diversion with interstitial thickening and small bilateral pleural effusions, "
            "larger on the right. No focal consolidation. No pneumothorax."
        ),
        "impression": (
            "Mild cardiomegaly with interstitial pulmonary oedema and small bilateral pleural "
            "effusions, in keeping with cardiac failure."
        ),
    },
    "cxr/derived-3": {
        "stratum": "abnormal",
        "findings": (
            "PA view of the chest. There is a rounded opacity of about 2 cm in the left mid "
            "zone. The remaining lungs are clear. Heart size is normal. No pleural effusion or "
            "pneumothorax."
        ),
        "impression": (
            "Left mid zone nodule of about 2 cm. CT of the chest is recommended to characterise it."
        ),
    },
    "cxr/derived-4": {
        "stratum": "normal",
        "findings": (
            "PA view of the chest. Normal heart size and mediastinal contours. The lungs are "
            "clear, without focal consolidation. No pleural effusion or pneumothorax. No acute "
            "bony abnormality."
        ),
        "impression": "No acute cardiopulmonary abnormality.",
    },
    "cxr/derived-5": {
        "stratum": "abnormal",
        "findings": (
            "PA view of the chest. There is a moderate right apical pneumothorax, the lung edge "
            "about 3 cm from the chest wall at the apex. No mediastinal shift. The left lung is "
            "clear. Heart size is normal."
        ),
        "impression": "Moderate right apical pneumothorax without signs of tension.",
    },
    "cxr/derived-6": {
        "stratum": "normal",
        "findings": (
            "PA view of the chest. The cardiomediastinal silhouette is normal. Minor linear "
            "atelectasis at the left base; the lungs are otherwise clear. No pleural effusion."
        ),
        "impression": "Minor left basal atelectasis. No acute abnormality.",
    },
}

# The demo's radiographs beyond the two samples: each is one of the sample images under new,
# deterministic UIDs, as a new patient, some weeks later (re-seeding finds it already there),
# so the rated demo study has enough cases to show intervals. Same images, different reports:
# a demo of the workflow, not of reading.
DERIVED_CXR: dict[str, tuple[str, int]] = {
    "cxr/derived-1": ("cxr/siim_nihcxr14_chest_PA_jpeg.dcm", 14),
    "cxr/derived-2": ("cxr/nema_wg04_RG1_chest_PA_J2KI.dcm", 21),
    "cxr/derived-3": ("cxr/siim_nihcxr14_chest_PA_jpeg.dcm", 35),
    "cxr/derived-4": ("cxr/nema_wg04_RG1_chest_PA_J2KI.dcm", 42),
    "cxr/derived-5": ("cxr/siim_nihcxr14_chest_PA_jpeg.dcm", 56),
    "cxr/derived-6": ("cxr/nema_wg04_RG1_chest_PA_J2KI.dcm", 63),
}

# The repository holds one CT series, and the retrieval baseline answers a study with the report
# of another study of its kind. So the demo's second CT is that series again under new,
# deterministic UIDs, three months later (re-seeding finds it already there); its report above
# is written as a follow-up. The images are the same: a demo of the workflow, not of reading.
SECOND_CT = "ct/second-study"
SECOND_CT_SOURCE = "ct/lung_pet_ct_dx_A0002_thorax"
SECOND_CT_DAYS_LATER = 91
_COPY_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
_COPY_DATES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")


class Command(BaseCommand):
    help = (
        "Create demo users, import the sample studies with their original reports, and seed "
        "two rated reader studies."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        logins = self._users()
        studies = self._studies()
        reports = self._reports(studies)
        seeded = self._reader_studies(studies)
        self.stdout.write("\nDemo logins (also in demo_logins.json in the data folder):")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {logins[username]:<24} ({role.label})")
        self.stdout.write(
            f"\nArchive: {Study.objects.count()} studies; demo studies: {len(studies)}; "
            f"original reports created: {reports}.\n"
        )
        for line in seeded:
            self.stdout.write(f"Reader study seeded: {line}.")

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
        with tempfile.TemporaryDirectory(prefix="radreview-demo-") as scratch:
            return self._import(scratch=Path(scratch))

    def _import(self, *, scratch: Path) -> dict[str, Study]:
        files: list[IncomingFile] = []
        for key in DEMO_REPORTS:
            source = SAMPLES / key
            if key == SECOND_CT:
                files.extend(
                    IncomingFile(name=f"{key}/{path.name}", path=path)
                    for path in second_ct_write(SAMPLES / SECOND_CT_SOURCE, scratch / "ct")
                )
            elif key in DERIVED_CXR:
                sample, days = DERIVED_CXR[key]
                (path,) = copy_write(
                    [SAMPLES / sample], scratch / key, key=key, days_later=days, new_patient=True
                )
                files.append(IncomingFile(name=f"{key}/{path.name}", path=path))
            elif source.is_dir():
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
            f"{counts['quarantined']} held for review, {counts['rejected']} refused."
        )
        for outcome in outcomes:
            if outcome.status == "rejected":
                self.stdout.write(f"  {outcome.status}: {outcome.name}: {outcome.reason}")
        # The samples are known to carry no burned-in text; radiographs that do not say so are
        # quarantined on import, and the seeder releases them as a coordinator would.
        released = 0
        for instance in Instance.objects.filter(
            status=Instance.Status.QUARANTINED,
            sop_instance_uid__in=[o.sop_instance_uid for o in outcomes if o.sop_instance_uid],
        ):
            instance_quarantine_approve(instance=instance, reviewed_by=None)
            released += 1
        if released:
            self.stdout.write(f"Released {released} sample images from quarantine.")
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
                if study.reports.filter(kind="original").exists():
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

    def _reader_studies(self, studies: dict[str, Study]) -> list[str]:
        user_model = get_user_model()
        readers = [
            user_model.objects.get(username=name)
            for name, role in DEMO_USERS
            if role == Role.READER
        ]
        ordered = [studies[key] for key in DEMO_REPORTS if key in studies]
        return demo_studies_seed(
            coordinator=user_model.objects.get(username="coordinator"),
            readers=readers,
            radiographs=[s for s in ordered if "CT" not in s.modalities.split("\\")],
            all_studies=ordered,
        )


def second_ct_write(source: Path, target: Path) -> list[Path]:
    """Write the files of the demo's second CT study (see SECOND_CT) into ``target``."""
    return copy_write(
        sorted(source.glob("*.dcm")), target, key=SECOND_CT, days_later=SECOND_CT_DAYS_LATER
    )


def copy_write(
    paths: list[Path], target: Path, *, key: str, days_later: int, new_patient: bool = False
) -> list[Path]:
    """Write ``paths`` into ``target`` as the demo study ``key``: new UIDs derived from the key
    and the old UIDs (the same on every run), dates ``days_later``; ``new_patient``: a patient
    of its own, named after the key."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword in _COPY_UIDS:
            if keyword in ds:
                value = str(getattr(ds, keyword))
                setattr(ds, keyword, generate_uid(entropy_srcs=["radreview demo", key, value]))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword in _COPY_DATES:
            if ds.get(keyword):
                day = datetime.datetime.strptime(str(getattr(ds, keyword)), "%Y%m%d")
                later = day + datetime.timedelta(days=days_later)
                setattr(ds, keyword, later.strftime("%Y%m%d"))
        if new_patient:
            ds.PatientID = f"DEMO-{key.rsplit('/', 1)[-1].upper()}"
            ds.PatientName = f"Demo^{key.rsplit('/', 1)[-1].replace('-', ' ').title()}"
        written.append(target / path.name)
        ds.save_as(written[-1])
    return written
