"""Small synthetic research datasets in each layout, built during a test (no dataset text).

Pixels are random-looking but seeded, so every test sees the same images; report texts are
written for these tests and carry headings and a signature, so a rendering that does nothing
cannot pass for one that works.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

FINDINGS = "Heart size is normal. No focal consolidation, effusion or pneumothorax."
IMPRESSION = "No acute cardiopulmonary process."


def gray8(seed: int, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8)


def gray16(seed: int, size: tuple[int, int] = (40, 36)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, size=size, dtype=np.uint16)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def write_jpeg(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def manifest_dataset(root: Path, *, studies: int = 2, with_reports: bool = True) -> Path:
    """``studies`` studies of a PA and a lateral PNG each, with a manifest (and reports)."""
    rows = []
    for number in range(studies):
        study_id = f"st{number:04d}"
        for view, seed in (("PA", 2 * number), ("LATERAL", 2 * number + 1)):
            name = f"images/{study_id}_{view.lower()}.png"
            write_png(root / name, gray8(seed))
            row = {
                "study_id": study_id,
                "image": name,
                "view": view,
                "patient_id": f"pt{number // 2}",
                "study_date": f"2021-03-{number % 28 + 1:02d}",
                "laterality": "",
                "findings": "",
                "impression": "",
                "indication": "",
            }
            if with_reports and view == "PA":
                row["findings"] = f"FINDINGS: {FINDINGS}"
                row["impression"] = f"{IMPRESSION}\nElectronically signed by Dr. Test Reader."
                row["indication"] = "Cough for two weeks."
            rows.append(row)
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def rexrank_dataset(root: Path) -> Path:
    """Two ReXrank-style studies: one frontal + lateral with sections and context, one with a
    single report string and a NaN impression, as the published files write them."""
    images = root / "images"
    write_png(images / "CXR1_IM-1/0.png", gray8(101))
    write_png(images / "CXR1_IM-1/1.png", gray8(102))
    write_png(images / "CXR2_IM-2/0.png", gray8(103))
    text = (
        "{\n"
        '  "CXR1_IM-1": {"image_path": ["CXR1_IM-1/0.png", "CXR1_IM-1/1.png"],'
        ' "frontal_lateral": ["Frontal", "Lateral"],'
        f' "section_findings": "{FINDINGS}", "section_impression": "{IMPRESSION}",'
        ' "context": "Age:60-70.Gender:F.Indication: Chest pain. Comparison: None.",'
        ' "split": "test"},\n'
        '  "CXR2_IM-2": {"image_path": ["/CXR2_IM-2/0.png"],'
        ' "frontal_lateral": ["postero-anterior"],'
        f' "report": "Findings: {FINDINGS} Impression: {IMPRESSION}",'
        ' "section_findings": NaN, "section_impression": NaN,'
        ' "context": "Indication: Fever."}\n'
        "}\n"
    )
    (root / "test.json").write_text(text)
    return root


def mimic_dataset(root: Path) -> Path:
    """MIMIC-CXR-JPG's layout: two studies of one subject, JPEG images, metadata CSV, and a
    free-text report beside the first study's folder."""
    rows = [
        ("aaaa1111-0001", "10000032", "50000001", "PA", "21800506", "213014.531"),
        ("aaaa1111-0002", "10000032", "50000001", "LATERAL", "21800506", "213014.531"),
        ("aaaa1111-0003", "10000032", "50000002", "AP", "21810101", "80100"),
    ]
    for index, (dicom_id, subject, study, *_rest) in enumerate(rows):
        write_jpeg(root / f"files/p10/p{subject}/s{study}/{dicom_id}.jpg", gray8(200 + index))
    (root / "files/p10/p10000032/s50000001.txt").write_text(
        "                                 FINAL REPORT\n"
        " EXAMINATION:  CHEST (PA AND LAT)\n\n"
        " INDICATION:  ___ with cough.\n\n"
        " TECHNIQUE:  Chest PA and lateral\n\n"
        " COMPARISON:  None.\n\n"
        f" FINDINGS:\n \n {FINDINGS}\n \n"
        f" IMPRESSION:\n \n {IMPRESSION}\n"
    )
    with (root / "mimic-cxr-2.0.0-metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate", "StudyTime"]
        )
        writer.writerows(rows)
    return root


def rexrank_predictions(path: Path, study_ids: list[str]) -> Path:
    path.write_text(
        json.dumps({sid: {"model_prediction": f"Findings: {FINDINGS}"} for sid in study_ids})
    )
    return path
