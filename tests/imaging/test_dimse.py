"""PACS push: DCMTK's echoscu and storescu, the clients a PACS administrator tries first, talk
to the receiver (`manage.py dicom_receiver`, a real process on the test database)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from django.test import Client
from django.urls import reverse
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from reviewapp.imaging.models import ImportBatch, ImportProblem, Instance, Study
from tests.conftest import REPO_ROOT
from tests.imaging.conftest import CT_FILES, CXR_J2K, CXR_JPEG, database_url

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("storescu") is None or shutil.which("echoscu") is None,
        reason="DCMTK (storescu, echoscu) is not installed: apt-get install dcmtk",
    ),
]

AE_TITLE = "RADREVIEW"
PACS = "PACSIM"


@dataclass(frozen=True)
class Receiver:
    port: int
    data_dir: Path
    log: Path

    def send(self, tool: str, *args: str, calling: str = PACS) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool, "-v", "-aet", calling, "-aec", AE_TITLE, *args, "127.0.0.1", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )

    def store(
        self,
        *files: Path,
        calling: str = PACS,
        halt: bool = True,
        options: list[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        options = [*(options or []), *([] if halt else ["--no-halt"])]
        # storescu takes the host and port before the files.
        return subprocess.run(
            [
                "storescu", "-v", *options, "-aet", calling, "-aec", AE_TITLE,
                "127.0.0.1", str(self.port), *map(str, files),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def receiver(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """One receiver process for the module, on the test database; only PACSIM may call."""
    data_dir = tmp_path_factory.mktemp("dimse-data")
    log_path = data_dir / "receiver.log"
    port = _free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        RADREVIEW_DATA_DIR=str(data_dir),
        RADREVIEW_DICOM_AE_TITLE=AE_TITLE,
        RADREVIEW_DICOM_ALLOWED_CALLING_AES=f"{PACS},OTHERPACS",
        PYTHONUNBUFFERED="1",
    )
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dicom_receiver", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while "listening on" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the DICOM receiver did not start"
            time.sleep(0.2)
        yield Receiver(port=port, data_dir=data_dir, log=log_path)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def pushed_to(receiver: Receiver, transactional_db: None, settings) -> Receiver:
    """The receiver, with this test process reading the same stored files."""
    settings.DATA_DIR = receiver.data_dir
    settings.MEDIA_ROOT = receiver.data_dir / "media"
    return receiver


def _batches_done(count: int, timeout: float = 60) -> list[ImportBatch]:
    """The push batches, oldest first, once ``count`` of them are closed.

    The receiver closes a batch as the association ends, just after storescu has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        batches = list(ImportBatch.objects.order_by("created_at", "id"))
        if len(batches) >= count and all(b.status == ImportBatch.Status.DONE for b in batches):
            return batches
        assert time.monotonic() < deadline, [(b.status, b.files_done) for b in batches]
        time.sleep(0.2)


def test_echo_answers_an_allowed_caller_and_leaves_no_batch(pushed_to: Receiver) -> None:
    result = pushed_to.send("echoscu")
    assert result.returncode == 0, result.stdout
    assert "Received Echo Response (Success)" in result.stdout
    assert ImportBatch.objects.count() == 0


def test_a_pushed_ct_is_imported_once_into_one_batch_and_a_repush_duplicates_nothing(
    pushed_to: Receiver, client: Client, coordinator
) -> None:
    first = pushed_to.store(*CT_FILES)
    assert first.returncode == 0, first.stdout[-3000:]
    assert first.stdout.count("Received Store Response (Success)") == 30
    [batch] = _batches_done(1)
    assert batch.source == ImportBatch.Source.DIMSE
    assert batch.origin.startswith(f"{PACS} at 127.0.0.1")
    assert (batch.files_total, batch.files_done, batch.imported_count, batch.failed_count) == (
        30,
        30,
        30,
        0,
    )
    assert Instance.objects.filter(import_batch=batch).count() == 30
    study = Study.objects.get()
    # De-identified on the way in, as an upload is: the sender's StudyInstanceUID is replaced.
    sent = pydicom.dcmread(CT_FILES[0], stop_before_pixels=True)
    assert study.study_instance_uid != sent.StudyInstanceUID
    # The coordinator finds the pushed study in the study list, with all its slices.
    client.force_login(coordinator)
    page = client.get(reverse("imaging:study_list"))
    assert page.status_code == 200
    [row] = page.context["page"]
    assert (row.public_id, row.series_count, row.instance_count) == (study.public_id, 1, 30)
    # And the batch, named by its sender, among the recent imports.
    imports = client.get(reverse("imaging:upload"))
    assert f"{PACS} at 127.0.0.1" in imports.content.decode()

    again = pushed_to.store(*CT_FILES)
    assert again.returncode == 0, again.stdout[-3000:]
    # Already stored is success for the sender (idempotent), and nothing is stored twice.
    assert again.stdout.count("Received Store Response (Success)") == 30
    _, repush = _batches_done(2)
    assert (repush.files_done, repush.imported_count, repush.duplicate_count) == (30, 0, 30)
    assert Instance.objects.count() == 30
    assert Study.objects.count() == 1


def test_refused_files_get_a_failure_status_and_their_reasons_in_the_batch(
    pushed_to: Receiver, tmp_path: Path
) -> None:
    report = get_testdata_file("test-SR.dcm", download=False)
    assert report is not None
    # A CT slice whose header promises twice the rows its pixel data holds.
    short = pydicom.dcmread(CT_FILES[0])
    short.Rows = int(short.Rows) * 2
    short.SOPInstanceUID = generate_uid()
    short.save_as(tmp_path / "short.dcm")

    result = pushed_to.store(Path(report), tmp_path / "short.dcm", CT_FILES[0], halt=False)
    assert result.stdout.count("Received Store Response (Error: CannotUnderstand)") == 2
    assert result.stdout.count("Received Store Response (Success)") == 1
    [batch] = _batches_done(1)
    assert (batch.files_done, batch.imported_count, batch.failed_count) == (3, 1, 2)
    problems = list(batch.problems.order_by("id"))  # type: ignore[attr-defined]
    assert [p.kind for p in problems] == [ImportProblem.Kind.REJECTED] * 2
    assert [p.file_name for p in problems] == ["instance 1", "instance 2"]
    assert problems[0].reason.startswith("structured report documents are refused")
    assert problems[1].reason.startswith("truncated: pixel data has")
    assert Instance.objects.count() == 1
    # The refusals are in the receiver's log too, for whoever runs it.
    log = pushed_to.log.read_text()
    assert f"batch {batch.public_id} refused an instance: structured report" in log

    # storescu's default (halt on the first failure) exits with an error: a PACS sees it.
    halted = pushed_to.store(Path(report))
    assert halted.returncode != 0


def test_compressed_radiographs_are_stored_but_held_in_quarantine_with_a_warning(
    pushed_to: Receiver,
) -> None:
    # Sent as stored, JPEG baseline and JPEG 2000 (storescu proposes those syntaxes only when
    # told): the receiver accepts compressed transfer syntaxes, not only uncompressed ones.
    for path, proposal in ((CXR_JPEG, "-xy"), (CXR_J2K, "-xw")):
        result = pushed_to.store(path, options=[proposal])
        assert result.returncode == 0, result.stdout[-3000:]
        assert "Converting transfer syntax: JPEG" in result.stdout
        assert "Received Store Response (Warning: CoercionOfDataElements)" in result.stdout
    batches = _batches_done(2)
    for batch in batches:
        assert (batch.imported_count, batch.quarantined_count, batch.failed_count) == (0, 1, 0)
        assert batch.problems.get().kind == ImportProblem.Kind.QUARANTINED  # type: ignore[attr-defined]
    assert Instance.objects.filter(status=Instance.Status.QUARANTINED).count() == 2


def test_a_calling_ae_not_allowed_is_rejected_at_association(pushed_to: Receiver) -> None:
    echo = pushed_to.send("echoscu", calling="INTRUDER")
    assert echo.returncode != 0
    assert "Association Rejected" in echo.stdout
    assert "Calling AE Title Not Recognized" in echo.stdout
    store = pushed_to.store(CT_FILES[0], calling="INTRUDER")
    assert store.returncode != 0
    assert "Association Rejected" in store.stdout
    assert ImportBatch.objects.count() == 0
    assert Instance.objects.count() == 0
    assert "from AE 'INTRUDER' at 127.0.0.1 rejected: calling AE title not allowed" in (
        pushed_to.log.read_text()
    )
    # A second allowed sender gets in: the allow-list is a list.
    assert pushed_to.send("echoscu", calling="OTHERPACS").returncode == 0


def test_a_wrong_called_ae_title_is_rejected(pushed_to: Receiver) -> None:
    result = subprocess.run(
        ["echoscu", "-aet", PACS, "-aec", "SOMEONEELSE", "127.0.0.1", str(pushed_to.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stdout


def test_serve_starts_the_receiver_unless_its_port_is_0() -> None:
    from reviewapp.runner import dicom_receiver_command

    command = dicom_receiver_command({})
    assert command is not None
    assert command[-1] == "dicom_receiver"
    assert dicom_receiver_command({"RADREVIEW_DICOM_PORT": "0"}) is None
