from dataclasses import replace

import numpy as np
import pytest

from ml.training.datasets import load_crops
from ml.training.sbi import face_mask, sample_params, self_blend
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def real_face(face_detector):
    from ml.faces import crop_face
    from ml.media import read_image

    path = next(shared_path("data", "images", "lfw_faceswap", "train", "real").glob("*.jpg"))
    _, image = read_image(path)
    detection = face_detector.detect([image])[0][0]
    crop = crop_face(image, detection, margin=0.3, size=256)
    return crop.image, crop.landmarks


def test_sbi_keeps_the_shape_and_changes_only_inside_the_mask(real_face):
    face, landmarks = real_face
    fake, mask = self_blend(face, landmarks, np.random.default_rng(3))
    assert fake.shape == face.shape and fake.dtype == np.uint8
    outside = mask == 0
    assert outside.any() and (~outside).any()
    assert np.array_equal(fake[outside], face[outside])
    changed = np.any(fake != face, axis=-1)
    assert changed.sum() > 0.05 * changed.size  # it did blend something visible
    assert not np.any(changed & outside)


def test_sbi_is_deterministic_under_a_seed(real_face):
    face, landmarks = real_face
    a, _ = self_blend(face, landmarks, np.random.default_rng(7))
    b, _ = self_blend(face, landmarks, np.random.default_rng(7))
    c, _ = self_blend(face, landmarks, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_mask_covers_the_inner_face_and_not_the_corners(real_face):
    face, landmarks = real_face
    mask = face_mask(landmarks, face.shape[:2], sample_params(np.random.default_rng(0)))
    for x, y in landmarks.round().astype(int):
        assert mask[y, x] > 0.5  # eyes, nose and mouth are inside
    for y, x in [(0, 0), (0, 255), (255, 0), (255, 255)]:
        assert mask[y, x] == 0


def test_shared_params_blend_every_frame_of_a_video_alike(real_face):
    face, landmarks = real_face
    params = sample_params(np.random.default_rng(1))
    a, _ = self_blend(face, landmarks, params=params)
    b, _ = self_blend(face, landmarks, params=params)
    assert np.array_equal(a, b)


def test_load_crops_round_trips(tmp_path):
    crops = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "k.npz", crops=crops, landmarks=np.zeros((3, 5, 2)))
    assert np.array_equal(load_crops(tmp_path, "k")["crops"], crops)


def test_part_masks_cover_their_region_and_leave_the_rest(real_face):
    face, landmarks = real_face
    left_eye, right_eye, _nose, mouth_left, mouth_right = landmarks.round().astype(int)
    base = sample_params(np.random.default_rng(0))
    mouth = face_mask(landmarks, face.shape[:2], replace(base, region="mouth"))
    eyes = face_mask(landmarks, face.shape[:2], replace(base, region="eyes"))
    for x, y in (mouth_left, mouth_right):
        assert mouth[y, x] > 0.5 and eyes[y, x] == 0
    for x, y in (left_eye, right_eye):
        assert eyes[y, x] > 0.5 and mouth[y, x] == 0
    whole = face_mask(landmarks, face.shape[:2], base)
    assert 0 < mouth.sum() < 0.6 * whole.sum() and 0 < eyes.sum() < 0.6 * whole.sum()


def test_part_share_draws_part_blends_and_zero_keeps_the_whole_face(real_face):
    face, landmarks = real_face
    rng = np.random.default_rng(5)
    assert {sample_params(rng).region for _ in range(50)} == {"face"}
    drawn = [sample_params(rng, part_share=1.0).region for _ in range(60)]
    assert set(drawn) == {"mouth", "eyes"} and drawn.count("mouth") > drawn.count("eyes")
    # With no part share, a seeded blend is the one earlier runs made (the stream is unchanged).
    a, _ = self_blend(face, landmarks, np.random.default_rng(7))
    b, _ = self_blend(face, landmarks, np.random.default_rng(7), part_share=0.0)
    assert np.array_equal(a, b)
    fake, mask = self_blend(face, landmarks, np.random.default_rng(7), part_share=1.0)
    assert np.array_equal(fake[mask == 0], face[mask == 0]) and np.any(fake != face)
