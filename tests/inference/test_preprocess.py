from __future__ import annotations

import numpy as np
import pytest

from inference.descriptor import study_descriptor
from inference.preprocess import evenly_spaced, pick_radiographs, prepare_study
from inference.types import ImageRef, InferenceError, StudyInput
from tests.inference.conftest import CXR_J2K, ref_for


def test_ct_slices_are_sampled_evenly_with_both_ends_and_one_window_per_channel(
    ct_study: StudyInput,
) -> None:
    prepared = prepare_study(ct_study, {"ct_slices": 5})

    assert prepared.description["slice_indices"] == [0, 7, 14, 22, 29]
    assert prepared.sop_instance_uids == [
        ct_study.images[i].sop_instance_uid for i in (0, 7, 14, 22, 29)
    ]
    pixels = np.asarray(prepared.images[2])
    assert pixels.shape == (512, 512, 3)
    # Lung, mediastinal and bone windows differ on a chest CT: the channels are not copies.
    assert not np.array_equal(pixels[..., 0], pixels[..., 1])
    assert not np.array_equal(pixels[..., 1], pixels[..., 2])


def test_ct_windows_are_configurable(ct_study: StudyInput) -> None:
    prepared = prepare_study(ct_study, {"ct_slices": 1, "ct_windows": [[40, 400]]})
    pixels = np.asarray(prepared.images[0])
    assert np.array_equal(pixels[..., 0], pixels[..., 2])
    assert prepared.description["windows"] == [[40.0, 400.0]]
    with pytest.raises(InferenceError, match="one to three"):
        prepare_study(ct_study, {"ct_windows": [[0, 1]] * 4})


def test_radiographs_are_fitted_and_monochrome1_is_inverted(cxr_study: StudyInput) -> None:
    j2k = StudyInput(study_key="j", kind="CXR", images=(ref_for(CXR_J2K),))
    prepared = prepare_study(j2k, {"max_side": 256})

    assert max(prepared.images[0].size) == 256
    assert prepared.description["windowing"] == ["dicom-voi+invert-monochrome1"]
    grey = np.asarray(prepared.images[0])[..., 0].astype(float)
    # Shown the way a reader sees it, the mediastinum is brighter than both lung fields;
    # without the MONOCHROME1 inversion it would be the other way round.
    h, w = grey.shape
    band = grey[h // 3 : 2 * h // 3]
    mediastinum = band[:, 9 * w // 20 : 11 * w // 20].mean()
    assert mediastinum > band[:, w // 5 : 2 * w // 5].mean() + 30
    assert mediastinum > band[:, 3 * w // 5 : 4 * w // 5].mean() + 30


def test_the_frontal_view_comes_first_then_one_lateral(tmp_path) -> None:
    lateral = ImageRef("lat", tmp_path, view_position="LL")
    frontal = ImageRef("pa", tmp_path, view_position="PA")
    other = ImageRef("x", tmp_path, view_position="")
    assert pick_radiographs([lateral, other, frontal], max_images=2) == [frontal, lateral]
    assert pick_radiographs([lateral, other, frontal], max_images=1) == [frontal]
    assert pick_radiographs([lateral], max_images=1) == [lateral]


def test_evenly_spaced_handles_short_series() -> None:
    assert evenly_spaced(3, 16) == [0, 1, 2]
    assert evenly_spaced(30, 1) == [15]
    assert evenly_spaced(0, 4) == []


def test_an_unreadable_file_names_the_instance(tmp_path) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not dicom at all")
    study = StudyInput("s", "CXR", (ImageRef("1.2.3.4", broken, view_position="PA"),))
    with pytest.raises(InferenceError, match=r"Instance 1\.2\.3\.4 could not be read"):
        prepare_study(study, {})


def test_descriptors_are_fixed_length_and_tell_studies_apart(
    cxr_study: StudyInput, ct_study: StudyInput
) -> None:
    j2k = StudyInput(study_key="j", kind="CXR", images=(ref_for(CXR_J2K),))
    a, b, c = study_descriptor(cxr_study), study_descriptor(j2k), study_descriptor(ct_study)
    assert a.shape == b.shape == c.shape == (1040,)
    assert a.dtype == np.float32
    assert np.array_equal(a, study_descriptor(cxr_study))
    assert np.linalg.norm(a - b) > 0.1
