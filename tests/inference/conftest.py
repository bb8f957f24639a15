from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest

from inference.backends import backend_cache_clear
from inference.types import ImageRef, StudyInput
from tests.conftest import SAMPLES
from tests.inference.tiny_models import build_llava, build_vision_encoder_decoder

CXR_JPEG = SAMPLES / "cxr" / "siim_nihcxr14_chest_PA_jpeg.dcm"
CXR_J2K = SAMPLES / "cxr" / "nema_wg04_RG1_chest_PA_J2KI.dcm"
CT_DIR = SAMPLES / "ct" / "lung_pet_ct_dx_A0002_thorax"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def ref_for(path: Path) -> ImageRef:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    position = ds.get("ImagePositionPatient")
    return ImageRef(
        sop_instance_uid=str(ds.SOPInstanceUID),
        path=path,
        modality=str(ds.Modality),
        view_position=str(ds.get("ViewPosition", "")),
        position=float(position[2]) if position else None,
    )


@pytest.fixture
def cxr_study() -> StudyInput:
    return StudyInput(study_key="cxr-1", kind="CXR", images=(ref_for(CXR_JPEG),))


@pytest.fixture
def ct_study() -> StudyInput:
    refs = sorted((ref_for(p) for p in CT_DIR.glob("*.dcm")), key=lambda r: r.position or 0)
    return StudyInput(study_key="ct-1", kind="CT", images=tuple(refs))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "vision-encoder-decoder": build_vision_encoder_decoder(root / "ved"),
        "image-text-to-text": build_llava(root / "llava"),
    }


@pytest.fixture(autouse=True)
def _fresh_backends() -> None:
    backend_cache_clear()
