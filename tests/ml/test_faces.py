import cv2
import numpy as np
import pytest

from ml.faces import Detection, FaceDetector, Interpolated, assign_tracks, crop_face, detect_sparse
from ml.media import read_frames, read_image
from tests.conftest import shared_path


def test_faces_are_found_in_every_sampled_frame_of_a_real_video(face_detector):
    _, frames = read_frames(shared_path("data", "videos", "ffpp", "real", "033.mp4"), 10)
    detections = face_detector.detect([f.image for f in frames])
    assert all(faces for faces in detections)
    # The presenter is the largest face in every frame, with landmarks inside the box.
    for faces in detections:
        main = faces[0]
        x1, y1, x2, y2 = main.box
        assert main.confidence > 0.95
        assert 50 < main.size < 200
        assert np.all((main.landmarks[:, 0] > x1) & (main.landmarks[:, 0] < x2))
        assert np.all((main.landmarks[:, 1] > y1) & (main.landmarks[:, 1] < y2))


def test_a_multi_face_photo_yields_every_face(face_detector):
    _, image = read_image(shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg"))
    faces = face_detector.detect([image])[0]
    assert len(faces) >= 4
    assert [f.size for f in faces] == sorted((f.size for f in faces), reverse=True)


def test_a_photo_without_a_face_yields_none(face_detector, tmp_path):
    from tests.media_factory import blank_photo

    _, image = read_image(blank_photo(tmp_path / "wall.jpg"))
    assert face_detector.detect([image]) == [[]]


def test_images_of_different_sizes_can_be_detected_together(face_detector):
    folder = shared_path("data", "images", "real_faces", "facenet_pytorch")
    _, big = read_image(folder / "multiface.jpg")
    _, small = read_image(next(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg")))
    detections = face_detector.detect([big, small, big])
    assert len(detections[0]) == len(detections[2]) >= 4
    assert len(detections[1]) >= 1


@pytest.mark.parametrize("video", ["real/033.mp4", "fake/Deepfakes_044_945.mp4"])
def test_following_faces_finds_them_where_searching_every_frame_finds_them(face_detector, video):
    _, frames = read_frames(shared_path("data", "videos", "ffpp", video), 16)
    images = [frame.image for frame in frames]
    searched = face_detector.detect(images)
    followed = face_detector.detect_following(images, search_every=4)
    assert all(searched)
    for theirs, ours in zip(searched, followed, strict=True):
        # The presenter in every frame; any face found, found where the whole search found it.
        # (033 has a face in the background that the whole search finds in some frames only.)
        assert ours and np.allclose(ours[0].box, theirs[0].box, rtol=0, atol=1e-2)
        for face in ours:
            same = [other for other in theirs if np.allclose(face.box, other.box, rtol=0, atol=1e-2)]
            assert len(same) == 1
            np.testing.assert_allclose(face.landmarks, same[0].landmarks, rtol=0, atol=1e-2)


def test_a_face_beside_a_followed_one_is_found_at_the_next_whole_search(face_detector):
    _, frames = read_frames(shared_path("data", "videos", "ffpp", "real", "033.mp4"), 10)
    face = frames[0].image
    wall = np.full_like(face, 128)
    one, two = np.concatenate([face, wall], axis=1), np.concatenate([face, face], axis=1)
    n_one, n_two, n_face = (len(faces) for faces in face_detector.detect([one, two, face]))
    assert n_two > n_one > 0
    # Frame 0 is searched whole, 1-3 around the faces of the frame before, 4 whole again.
    found = face_detector.detect_following([one, two, two, two, two, two], search_every=4)
    assert [len(faces) for faces in found] == [n_one] * 4 + [n_two] * 2
    # After a frame without faces there is nothing to follow: the next is searched whole.
    found = face_detector.detect_following([wall, face, face], search_every=4)
    assert [len(faces) for faces in found] == [0, n_face, n_face]


def test_crop_face_is_square_with_margin_and_moves_landmarks():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:150, 100:200] = 255  # the "face"
    detection = Detection(
        (100, 50, 200, 150),
        np.array([[130, 80], [170, 80], [150, 100], [135, 125], [165, 125]], np.float32),
        0.99,
    )
    crop = crop_face(image, detection, margin=0.25, size=150)
    assert crop.image.shape == (150, 150, 3)
    # The box is 100 px; with 25 % margin each side the square is 150 px: scale 1.
    assert crop.square == (75, 25, 225, 175)
    assert np.allclose(crop.landmarks[0], [55, 55])
    assert crop.image[75, 75].tolist() == [255, 255, 255]
    assert crop.image[5, 5].tolist() == [0, 0, 0]


def test_crop_face_at_the_edge_keeps_scale():
    image = np.full((100, 100, 3), 90, np.uint8)
    detection = Detection((0, 0, 40, 40), np.zeros((5, 2), np.float32), 0.99)
    crop = crop_face(image, detection, margin=0.5, size=80)
    assert crop.image.shape == (80, 80, 3)
    assert crop.square == (-20, -20, 60, 60)


def test_tracks_follow_each_person_across_frames():
    def det(x: float) -> Detection:
        return Detection((x, 10, x + 50, 60), np.zeros((5, 2), np.float32), 0.99)

    frames = [[det(0), det(300)], [det(310), det(8)], [det(16)], [det(24), det(320)]]
    assert assign_tracks(frames) == 2
    left = [f.track_id for faces in frames for f in faces if f.box[0] < 100]
    right = [f.track_id for faces in frames for f in faces if f.box[0] >= 100]
    assert len(set(left)) == 1 and len(set(right)) == 1 and left[0] != right[0]


def test_tracks_on_a_real_video_keep_the_presenter_in_one_track(face_detector):
    _, frames = read_frames(shared_path("data", "videos", "ffpp", "real", "033.mp4"), 20)
    detections = face_detector.detect([f.image for f in frames])
    assign_tracks(detections)
    presenter = {faces[0].track_id for faces in detections}
    assert len(presenter) == 1


@pytest.mark.parametrize("n", [20, 100])  # faces followed between whole searches; every other frame detected
@pytest.mark.parametrize("backlog", [0, 5])  # frames taken one at a time; six at a time, some searched in batches
def test_detecting_frames_as_they_arrive_finds_what_one_call_finds(face_detector, n, backlog):
    path = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_044_945.mp4")
    _, frames = read_frames(path, n)
    timestamps = [frame.timestamp_s for frame in frames]
    at_once = detect_sparse(face_detector, [frame.image for frame in frames], timestamps)

    taken = []
    searched_alone = []
    follow = face_detector.follow

    def arriving():  # a generator, as frames come from a decoder
        for frame in frames:
            taken.append(frame.index)
            yield frame.image

    def follow_one(image, before):
        searched_alone.append(image)
        return follow(image, before)

    told: list[tuple[int, list[Detection]]] = []
    face_detector.follow = follow_one
    try:
        one_by_one = detect_sparse(
            face_detector, arriving(), timestamps, waiting=lambda: backlog, on_found=lambda *found: told.append(found)
        )
    finally:
        del face_detector.follow
    assert len(taken) == n
    runs_on = n if n == 20 else n // 2 + 1
    assert (len(searched_alone) == runs_on) == (backlog == 0) and searched_alone

    assert any(isinstance(face, Interpolated) for faces in at_once for face in faces) == (n == 100)
    assert [len(faces) for faces in one_by_one] == [len(faces) for faces in at_once]
    for ours, theirs in zip(one_by_one, at_once, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            # MTCNN's batches hold other frames, so sums run in another order: ~1e-5 px apart.
            assert a.box == pytest.approx(b.box, abs=1e-3)
            np.testing.assert_allclose(a.landmarks, b.landmarks, rtol=0, atol=1e-3)
            assert a.track_id == b.track_id and type(a) is type(b)
    # Every frame's faces were told once, in order, as the objects returned.
    assert [position for position, _ in told] == list(range(n))
    assert all(faces is one_by_one[position] for position, faces in told)


def test_detection_needs_an_image_for_every_timestamp(face_detector):
    _, frames = read_frames(shared_path("data", "videos", "ffpp", "real", "033.mp4"), 10)
    images, timestamps = [frame.image for frame in frames[:7]], [frame.timestamp_s for frame in frames]
    with pytest.raises(ValueError, match="10 timestamps"):
        detect_sparse(face_detector, images, timestamps)
    with pytest.raises(ValueError, match="10 timestamps"):
        detect_sparse(face_detector, iter(images), timestamps, on_found=lambda position, faces: None)


def test_frames_above_720p_are_searched_for_the_faces_that_can_decide_a_verdict(face_detector):
    from ml.calibration import MIN_COUNTED_FACE

    _, frames = read_frames(shared_path("data", "videos", "ffpp", "real", "033.mp4"), 10)
    image = frames[0].image  # 854x480: the presenter (~75 px) and a face in the background (~44 px)
    alone = face_detector.detect([image])[0]
    assert len(alone) == 2 and alone[1].size < MIN_COUNTED_FACE < alone[0].size
    # The same pixels in a 1080p frame: the presenter is found where they are; faces too small to
    # decide a verdict are not looked for there (in MTCNN's 640-px copy this one is 15 px).
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    frame[300:780, 500:1354] = image
    inside = face_detector.detect([frame])[0]
    assert len(inside) == 1
    moved = np.asarray(alone[0].box) + np.array([500, 300, 500, 300])
    np.testing.assert_allclose(inside[0].box, moved, rtol=0, atol=0.1 * alone[0].size)
    # The whole frame scaled to 1080p: both faces are large enough to be looked for, and the
    # presenter (~165 px) is found as a search for faces of every size finds them: the pyramid is
    # the same, only its levels for smaller faces are left out. (The other face, ~90 px, may come
    # out a few pixels apart: its box draws on candidates of those levels.)
    everything = FaceDetector()
    everything.smallest_face = lambda height, width: everything.min_face_size
    frame = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    theirs, ours = everything.detect([frame])[0], face_detector.detect([frame])[0]
    assert len(ours) == len(theirs) == 2 and ours[1].size > MIN_COUNTED_FACE
    np.testing.assert_allclose(ours[0].box, theirs[0].box, rtol=0, atol=1e-3)
    np.testing.assert_allclose(ours[0].landmarks, theirs[0].landmarks, rtol=0, atol=1e-3)
    assert face_detector.smallest_face(480, 854) == face_detector.smallest_face(720, 1280) == 40
    assert face_detector.smallest_face(1080, 1920) == face_detector.smallest_face(2160, 3840) == MIN_COUNTED_FACE
