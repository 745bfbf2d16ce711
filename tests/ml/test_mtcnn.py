"""`ml.mtcnn.detect_face` must compute what facenet-pytorch's `detect_face` computes: the
speed-up is in how images are resized and laid out in memory, never in what the detector
finds (the same faces; coordinates equal up to float32 rounding)."""

import numpy as np
import pytest
import torch
from facenet_pytorch.models.utils import detect_face as facenet
from torch.nn.functional import interpolate

from ml import mtcnn
from ml.faces import _resize
from ml.media import read_frames
from tests.conftest import shared_path


def test_resampling_matches_area_interpolation_value_for_value():
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (3, 97, 131, 3), dtype=np.uint8)
    integral = mtcnn._integral_images(images)
    batch = torch.as_tensor(images).permute(0, 3, 1, 2).float()  # channels-last, as facenet's
    n = 40
    image_inds = torch.as_tensor(rng.integers(0, 3, n))
    y0 = torch.as_tensor(rng.integers(0, 90, n))
    x0 = torch.as_tensor(rng.integers(0, 120, n))
    y1 = torch.minimum(y0 + torch.as_tensor(rng.integers(1, 80, n)), torch.tensor(97))
    x1 = torch.minimum(x0 + torch.as_tensor(rng.integers(1, 80, n)), torch.tensor(131))
    for size in [(24, 24), (48, 48), (7, 13)]:
        ours = mtcnn._resample(integral, image_inds, y0, y1, x0, x1, size)
        for k in range(n):
            crop = batch[image_inds[k], :, y0[k] : y1[k], x0[k] : x1[k]].unsqueeze(0)
            assert torch.equal(ours[k : k + 1], interpolate(crop, size=size, mode="area"))

    whole = [torch.full((3,), v) for v in (0, 97, 0, 131)]
    level = mtcnn._resample(integral, torch.arange(3), *whole, (59, 80))
    expected = interpolate(batch, size=(59, 80), mode="area")
    assert torch.equal(level, expected)
    assert level.stride() == expected.stride()  # the same layout, so P-Net computes the same


def test_a_box_wholly_outside_its_image_is_dropped_not_an_error():
    images = np.zeros((1, 50, 60, 3), np.uint8)
    integral = mtcnn._integral_images(images)
    boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0, 0.9], [-40.0, 5.0, -20.0, 25.0, 0.8]])
    kept, inds, crops = mtcnn._crop_boxes(integral, boxes, torch.tensor([0, 0]), 60, 50, 24)
    assert kept.tolist() == boxes[:1].tolist()
    assert inds.tolist() == [0]
    assert crops.shape == (1, 3, 24, 24)


@pytest.mark.slow
@pytest.mark.parametrize("video", ["real/033.mp4", "fake/Face2Face_469_481.mp4", "fake/Deepfakes_044_945.mp4"])
def test_faces_boxes_and_landmarks_are_facenet_pytorchs(face_detector, video):
    _, frames = read_frames(shared_path("data", "videos", "ffpp", video), 12)
    batch = np.stack([_resize(frame.image, 0.5) for frame in frames])
    net = face_detector.mtcnn
    args = (20, net.pnet, net.rnet, net.onet, net.thresholds, net.factor)
    with torch.inference_mode():
        theirs_boxes, theirs_points = facenet.detect_face(batch, *args, "cpu")
        ours_boxes, ours_points = mtcnn.detect_face(batch, *args)
    assert sum(len(boxes) for boxes in ours_boxes) >= len(frames)  # faces were found
    for theirs, ours in zip(theirs_boxes, ours_boxes, strict=True):
        theirs = np.asarray(theirs, np.float32)
        assert theirs.shape == ours.shape  # the same faces
        # Channels-last R-Net and O-Net sum in another order: float32 rounding, no more.
        np.testing.assert_allclose(ours[:, :4], theirs[:, :4], rtol=0, atol=1e-3)
        np.testing.assert_allclose(ours[:, 4], theirs[:, 4], rtol=0, atol=1e-5)
    for theirs, ours in zip(theirs_points, ours_points, strict=True):
        np.testing.assert_allclose(ours, np.asarray(theirs, np.float32), rtol=0, atol=1e-3)


def test_an_image_smaller_than_the_smallest_face_has_none(face_detector):
    net = face_detector.mtcnn
    boxes, points = mtcnn.detect_face(
        np.zeros((2, 16, 16, 3), np.uint8), 40, net.pnet, net.rnet, net.onet, net.thresholds, net.factor
    )
    assert [b.shape for b in boxes] == [(0, 5), (0, 5)] and [p.shape for p in points] == [(0, 5, 2), (0, 5, 2)]
    assert face_detector.detect([np.zeros((16, 16, 3), np.uint8)]) == [[]]


def test_a_window_of_a_pyramid_level_proposes_what_the_whole_level_proposes(face_detector):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 90, 120, 3), dtype=np.uint8)
    integral = mtcnn._integral_images(images)
    pnet = face_detector.mtcnn.pnet
    scale = 0.7
    level = (int(90 * scale + 1), int(120 * scale + 1))  # 64 x 85: an odd width, a partial last pooling cell
    whole = [torch.full((2,), v) for v in (0, 90, 0, 120)]
    regions = [
        mtcnn.Region(0, 10.3, 20.8, 70.1, 77.7, smallest_face=1.0),
        mtcnn.Region(1, 61.0, 0.0, 120.0, 90.0, smallest_face=1.0),  # reaches the level's right and bottom ends
        mtcnn.Region(1, 0.0, 0.0, 90.0, 90.0, smallest_face=20.0),  # this level finds smaller faces only
    ]
    with torch.inference_mode():
        level_data = (mtcnn._resample(integral, torch.arange(2), *whole, level) - 127.5) * 0.0078125
        reg, probs = pnet(level_data)
        # Threshold 0: every output position is a candidate.
        expected, expected_inds = facenet.generateBoundingBox(reg, probs[:, 1], scale, 0.0)
        ours, ours_inds = mtcnn._propose_in_regions(integral, regions, (90, 120), level, scale, pnet, 0.0)

    candidates = {(int(i), *row[:4].tolist()): row for i, row in zip(expected_inds, expected, strict=True)}
    for i, row in zip(ours_inds, ours, strict=True):
        torch.testing.assert_close(row, candidates[(int(i), *row[:4].tolist())], rtol=0, atol=1e-5)
    for image, region in enumerate(regions[:2]):
        rows = mtcnn._window(region.y0, region.y1, scale, level[0])[1]
        cols = mtcnn._window(region.x0, region.x1, scale, level[1])[1]
        outputs = (-(-(rows - 2) // 2) - 4) * (-(-(cols - 2) // 2) - 4)
        assert int((ours_inds == image).sum()) == outputs


@pytest.mark.slow
@pytest.mark.parametrize("video", ["real/033.mp4", "fake/Deepfakes_044_945.mp4"])
def test_a_face_is_found_in_a_region_around_it_as_the_whole_image_search_finds_it(face_detector, video):
    _, frames = read_frames(shared_path("data", "videos", "ffpp", video), 10)
    batch = np.stack([_resize(frame.image, 0.5) for frame in frames[:8]])
    net = face_detector.mtcnn
    args = (20, net.pnet, net.rnet, net.onet, net.thresholds, net.factor)
    with torch.inference_mode():
        whole_boxes, whole_points = mtcnn.detect_face(batch, *args)
        regions = []
        for image, boxes in enumerate(whole_boxes[:-1]):  # the last image gets no region
            for x1, y1, x2, y2, _ in boxes:
                size, cx, cy = max(x2 - x1, y2 - y1), (x1 + x2) / 2, (y1 + y2) / 2
                regions.append(
                    mtcnn.Region(
                        image, cx - 1.25 * size, cy - 1.25 * size, cx + 1.25 * size, cy + 1.25 * size, 0.2 * size
                    )
                )
        boxes, points = mtcnn.detect_face(batch, *args, regions=regions)
    assert sum(map(len, whole_boxes)) >= len(batch)
    for k in range(len(batch) - 1):
        assert boxes[k].shape == whole_boxes[k].shape
        np.testing.assert_allclose(boxes[k], whole_boxes[k], rtol=0, atol=1e-3)
        np.testing.assert_allclose(points[k], whole_points[k], rtol=0, atol=1e-3)
    assert boxes[-1].shape == (0, 5)
