"""Finding faces: MTCNN on a downscaled copy, square crops from the full-resolution frame,
and faces grouped across frames into tracks (one track per person)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from ml.calibration import MIN_COUNTED_FACE

if TYPE_CHECKING:
    from ml.mtcnn import Region

# Frames at most this far apart (20 frames of a 10 s video: 0.5 s) are searched whole only one
# in every FOLLOW_SEARCH_EVERY, and around the faces found in the frame before otherwise.
FOLLOW_GAP_S = 0.6
FOLLOW_SEARCH_EVERY = 4
# A followed face is looked for in a square this many times its size around where it was (it
# may move by 0.75 of its size between frames) ...
FOLLOW_REACH = 2.5
# ... and at this fraction of its size or larger: smaller candidates of the first stage can grow
# into the face's box in the second, so they must be proposed as a whole search proposes them
# (at 0.5 some boxes on FF++ frames differed from the whole search's by 10 % of the face; at
# 0.3 and 0.2, 2 of 190 followed frames differed, and 0.3 is a fifth faster).
FOLLOW_SMALLEST = 0.3
# The smallest face looked for grows with frames larger than 720p: this fraction of the frame's
# shorter side (40 px at 720p, 60 at 1080p), up to the smallest face that can decide a verdict
# (`MIN_COUNTED_FACE`), so every face that can decide is still looked for. MTCNN works on a
# 640-px copy, where a 40-px face of a 1080p frame is 13 px, and its pyramid's levels for such
# faces are its largest. The pyramid stays the one `min_face_size` sets (its levels decide the
# boxes: shifting it to start at 60 px moved one FF++ video's P(fake) by 0.034); only the levels
# for smaller faces are left out.
SMALLEST_FACE_OF_FRAME = 1 / 18


@dataclass
class Detection:
    """One face in one frame, in full-resolution pixel coordinates."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2): eyes, nose, mouth corners
    confidence: float
    track_id: int = -1

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass
class FaceCrop:
    """A square crop around a detection, and the landmarks in the crop's pixels."""

    image: np.ndarray  # (S, S, 3) RGB uint8
    landmarks: np.ndarray  # (5, 2) in crop pixels
    square: tuple[int, int, int, int]  # the square in frame pixels that was cropped


class FaceDetector:
    """facenet-pytorch's MTCNN, made fast on a CPU.

    Frames are scaled so that their longer side is at most `detect_size` before detection
    (faces in a 720p frame are found as well at 640 px, ~3x faster), and boxes are mapped
    back to the full frame. Its stages run through `ml.mtcnn.detect_face`, which gives
    facenet-pytorch's results bit for bit with far less resizing work. MTCNN collapses
    when torch uses several threads on a *busy* machine: pass `threads=1` where other work
    competes for the cores (the crop cache does). On a quiet machine, all cores are ~1.7x
    faster than one (100 frames of 720p: 3.9 s against 6.6 s here).
    """

    def __init__(
        self,
        detect_size: int = 640,
        min_face_size: int = 40,
        thresholds: Sequence[float] = (0.6, 0.7, 0.8),
        min_confidence: float = 0.95,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
        threads: int | None = None,
    ) -> None:
        from facenet_pytorch import MTCNN

        self.detect_size = detect_size
        self.min_face_size = min_face_size
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.threads = threads
        self.mtcnn = MTCNN(
            keep_all=True,
            min_face_size=min_face_size,
            thresholds=list(thresholds),
            post_process=False,
            device=device,
        )

    def detect(
        self, images: Sequence[np.ndarray], near: Sequence[Sequence[Detection]] | None = None
    ) -> list[list[Detection]]:
        """Faces in each RGB image, largest first, down to `smallest_face` of its size. Images
        of one call may differ in size.

        With `near` (one list per image), an image is searched only around those faces: a
        square `FOLLOW_REACH` times a face's size, centred where it was, for faces at least
        `FOLLOW_SMALLEST` times its size. A face found there is found as a search of the
        whole image finds it (`ml.mtcnn.detect_face`), for a fraction of the work (a tenth for
        a 1080p frame, about half for a face filling much of a 720p frame); faces elsewhere
        are not found.
        """
        results: list[list[Detection]] = [[] for _ in images]
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            by_size.setdefault(image.shape[:2], []).append(i)
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or threads)
        try:
            for (height, width), indices in by_size.items():
                scale = min(1.0, self.detect_size / max(height, width))
                smallest = self.smallest_face(height, width) * scale  # in the scaled copy's pixels
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    if near is not None:
                        regions = _regions([near[i] for i in chunk], scale, smallest)
                        if not regions:
                            continue
                    elif smallest > self.min_face_size * scale:
                        # The whole image, on the pyramid's levels of the faces looked for.
                        regions = [_whole(k, height * scale, width * scale, smallest) for k in range(len(chunk))]
                    else:
                        regions = None
                    small = [_resize(images[i], scale) for i in chunk]
                    for i, faces in zip(chunk, self._detect_batch(small, scale, regions), strict=True):
                        results[i] = faces
        finally:
            torch.set_num_threads(threads)
        return results

    def detect_following(
        self, images: Sequence[np.ndarray], search_every: int = FOLLOW_SEARCH_EVERY
    ) -> list[list[Detection]]:
        """Faces in each of a sequence of frames: every `search_every`-th frame (the first
        included) is searched whole, and each frame between is searched around the faces of
        the frame before it (`detect(near=...)`): whole again when the frame before had none,
        or when that finds fewer faces than the frame before had. So a face that appears
        beside faces already followed is found from the next whole search on.
        """
        found: list[list[Detection]] = [[] for _ in images]
        searched = range(0, len(images), max(1, search_every))
        for i, faces in zip(searched, self.detect([images[i] for i in searched]), strict=True):
            found[i] = faces
        for step in range(1, search_every):
            frames = [i + step for i in searched if i + step < len(images)]
            following = [i for i in frames if found[i - 1]]
            near = [found[i - 1] for i in following]
            for i, faces in zip(following, self.detect([images[i] for i in following], near), strict=True):
                found[i] = faces
            whole = [i for i in frames if not found[i - 1] or len(found[i]) < len(found[i - 1])]
            for i, faces in zip(whole, self.detect([images[i] for i in whole]), strict=True):
                found[i] = faces
        return found

    def follow(self, image: np.ndarray, before: Sequence[Detection] | None) -> list[Detection]:
        """One frame of `detect_following`, on its own (for frames that arrive one at a time):
        its faces searched around `before`, the faces of the frame before it, or whole when
        `before` is None (a frame searched whole in its turn) or empty, or when the search
        around it finds fewer faces."""
        if before:
            faces = self.detect([image], [before])[0]
            if len(faces) >= len(before):
                return faces
        return self.detect([image])[0]

    def smallest_face(self, height: int, width: int) -> float:
        """The smallest face searched in a frame of this size (pixels, longer side):
        `min_face_size`, or `SMALLEST_FACE_OF_FRAME` of the frame's shorter side where that is
        larger, but never above `MIN_COUNTED_FACE` (unless `min_face_size` is)."""
        relative = min(height, width) * SMALLEST_FACE_OF_FRAME
        return max(self.min_face_size, min(relative, MIN_COUNTED_FACE))

    def _detect_batch(
        self, images: list[np.ndarray], scale: float, regions: list[Region] | None = None
    ) -> list[list[Detection]]:
        from ml.mtcnn import detect_face

        # The scaled-down minimum face size must stay >= 12 px, MTCNN's smallest window.
        mtcnn = self.mtcnn
        min_face = max(12, round(self.min_face_size * scale))
        with torch.inference_mode():
            boxes, points = detect_face(
                np.stack(images),
                min_face,
                mtcnn.pnet,
                mtcnn.rnet,
                mtcnn.onet,
                mtcnn.thresholds,
                mtcnn.factor,
                regions,
            )
        found = []
        for frame_boxes, frame_points in zip(boxes, points, strict=True):
            # Largest area first, as facenet-pytorch's MTCNN.detect orders them.
            order = np.argsort((frame_boxes[:, 2] - frame_boxes[:, 0]) * (frame_boxes[:, 3] - frame_boxes[:, 1]))[::-1]
            faces = []
            for box, landmarks in zip(frame_boxes[order], frame_points[order], strict=True):
                prob = float(box[4])
                if prob < self.min_confidence:
                    continue
                box_px = tuple(float(v) for v in np.asarray(box[:4], np.float32) / scale)
                faces.append(Detection(box_px, np.asarray(landmarks, np.float32) / scale, prob))
            faces.sort(key=lambda face: face.size, reverse=True)
            found.append(faces)
        return found


@dataclass
class Interpolated(Detection):
    """A face placed between two detections of the same track in the neighbouring frames."""


def detect_sparse(
    detector: FaceDetector,
    images: Iterable[np.ndarray],
    timestamps: Sequence[float],
    max_gap_s: float = 0.15,
    follow_gap_s: float = FOLLOW_GAP_S,
    waiting: Callable[[], int] | None = None,
    on_found: Callable[[int, list[Detection]], None] | None = None,
) -> list[list[Detection]]:
    """Faces in every frame, running the detector on only every other frame when frames are
    at most `max_gap_s` apart (100 frames of a 10 s video: 0.1 s), and searching only around
    the faces already found (`FaceDetector.detect_following`) on three of every four frames
    it runs on when frames are at most `follow_gap_s` apart.

    A skipped frame gets the faces whose track appears in both neighbouring frames, with box
    and landmarks halfway between (`Interpolated`); faces are still cropped from the skipped
    frame's own pixels. Tracks are assigned over all frames (`Tracks`). Halves detection,
    which is most of an analysis's time, when many frames are asked for.

    `images` has one image per timestamp, in order. By default they are all taken, then
    searched in batches. With `waiting` (how many more can be taken now without waiting for
    them), they may arrive while they are decoded: each is taken as soon as it is there; a
    frame in the middle of a group of `detect_following` is searched on its own
    (`FaceDetector.follow`), and whole groups that have all arrived are searched together, in
    batches (13-29 % less time than one at a time). MTCNN's batches then hold other frames than
    when all are searched at once, so its sums run in another order: boxes move by ~1e-5 px.
    `on_found(position, faces)` is told each frame's faces, in order, once they are settled:
    the objects returned, tracks assigned.
    """
    n = len(timestamps)
    gaps = np.diff(np.asarray(timestamps, np.float64))
    median_gap = float(np.median(gaps)) if len(gaps) else float("inf")
    search_every = FOLLOW_SEARCH_EVERY if median_gap <= follow_gap_s else 1
    interpolate = n >= 5 and median_gap <= max_gap_s
    detected = sorted(set(range(0, n, 2)) | {n - 1}) if interpolate else list(range(n))
    runs_on = set(detected)
    tracks = Tracks(max_gap=2 if interpolate else 3)
    faces_at: dict[int, list[Detection]] = {}

    def settle(position: int, faces: list[Detection]) -> None:
        tracks.add(faces)
        faces_at[position] = faces
        if position - 1 not in runs_on and position >= 2:  # a frame the detector skips
            faces_at[position - 1] = _between(faces_at[position - 2], faces)
            if on_found is not None:
                on_found(position - 1, faces_at[position - 1])
        if on_found is not None:
            on_found(position, faces)

    stream = enumerate(images)
    searched = 0  # frames of `detected` searched so far
    for first in stream:
        arrived = [first, *itertools.islice(stream, waiting() if waiting else n)]
        pending = [(position, image) for position, image in arrived if position in runs_on]
        while pending:
            at_group_start = searched % search_every == 0
            # Whole groups, and the last one however short: searched together.
            together = len(pending) if pending[-1][0] == detected[-1] else len(pending) // search_every * search_every
            if at_group_start and together > 1:
                batch, pending = pending[:together], pending[together:]
                found = detector.detect_following([image for _, image in batch], search_every)
                for (position, _), faces in zip(batch, found, strict=True):
                    settle(position, faces)
            else:
                (position, image), batch, pending = pending[0], pending[:1], pending[1:]
                settle(position, detector.follow(image, None if at_group_start else faces_at[detected[searched - 1]]))
            searched += len(batch)
    if len(faces_at) != n:
        raise ValueError(f"{n} timestamps, but images for {len(faces_at)} of the frames")
    return [faces_at[i] for i in range(n)]


def _between(before: Sequence[Detection], after: Sequence[Detection]) -> list[Detection]:
    """The faces of a skipped frame: those whose track is in the frames on both sides, with
    box and landmarks halfway between."""
    earlier = {face.track_id: face for face in before}
    faces: list[Detection] = []
    for face in after:
        if face.track_id in earlier:
            a = earlier[face.track_id]
            box = tuple((u + v) / 2 for u, v in zip(a.box, face.box, strict=True))
            landmarks = (a.landmarks + face.landmarks) / 2
            faces.append(Interpolated(box, landmarks, min(a.confidence, face.confidence), face.track_id))
    return faces


def _regions(near: Sequence[Sequence[Detection]], scale: float, smallest_face: float) -> list[Region]:
    """The regions to search, in the pixels of images scaled by `scale`, around each face of
    `near[k]` for image k of a batch, for faces of at least `smallest_face` (scaled pixels)."""
    from ml.mtcnn import Region

    regions = []
    for image, faces in enumerate(near):
        for face in faces:
            x1, y1, x2, y2 = (v * scale for v in face.box)
            cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, face.size * scale * FOLLOW_REACH / 2
            smallest = max(face.size * scale * FOLLOW_SMALLEST, smallest_face)
            regions.append(Region(image, cx - half, cy - half, cx + half, cy + half, smallest))
    return regions


def _whole(image: int, height: float, width: float, smallest_face: float) -> Region:
    """All of image `image` of a batch (its size in scaled pixels), for faces of at least
    `smallest_face`: a region twice its size, so that every pyramid level's window is the whole
    level (`_window`)."""
    from ml.mtcnn import Region

    return Region(image, 0.0, 0.0, 2.0 * width, 2.0 * height, smallest_face)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def crop_face(
    image: np.ndarray,
    detection: Detection,
    margin: float = 0.3,
    size: int = 224,
    interpolation: int | None = None,
) -> FaceCrop:
    """A square crop centred on the face box, `margin` wider on each side, resized to `size`.

    Parts of the square outside the frame are filled by replicating the border, so a face
    at the edge keeps its scale instead of being stretched.
    """
    x1, y1, x2, y2 = detection.box
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    side_px = max(2, round(side))
    right, bottom = left + side_px, top + side_px
    height, width = image.shape[:2]
    pad = max(0, -left, -top, right - width, bottom - height)
    source = image
    if pad:
        source = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = source[top + pad : bottom + pad, left + pad : right + pad]
    if interpolation is None:
        interpolation = cv2.INTER_AREA if side_px > size else cv2.INTER_LINEAR
    crop = cv2.resize(patch, (size, size), interpolation=interpolation)
    landmarks = (detection.landmarks - np.array([left, top], np.float32)) * (size / side_px)
    return FaceCrop(image=crop, landmarks=landmarks.astype(np.float32), square=(left, top, right, bottom))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assign_tracks(frames: Sequence[Sequence[Detection]], max_gap: int = 3) -> int:
    """Give every detection a `track_id` so the same person keeps one id across frames
    (`Tracks`). Returns the number of tracks."""
    tracks = Tracks(max_gap)
    for detections in frames:
        tracks.add(detections)
    return tracks.count


class Tracks:
    """People followed across frames, given one frame at a time.

    Greedy matching on box overlap and centre distance (relative to face size) against each
    track's last box, allowing a track to miss up to `max_gap` sampled frames. Sampled frames
    can be far apart in time, so a face that moved less than one face-width still matches.
    """

    def __init__(self, max_gap: int = 3) -> None:
        self.max_gap = max_gap
        self._tracks: list[dict] = []  # {"id", "box", "last"}
        self._frames = 0

    @property
    def count(self) -> int:
        return len(self._tracks)

    def add(self, detections: Sequence[Detection]) -> None:
        """Set the `track_id` of each detection of the next frame."""
        frame_number, tracks = self._frames, self._tracks
        self._frames += 1
        candidates = []
        for t, track in enumerate(tracks):
            if frame_number - track["last"] > self.max_gap:
                continue
            for d, detection in enumerate(detections):
                score = _match_score(track["box"], detection.box)
                if score > 0:
                    candidates.append((score, t, d))
        used_tracks, used_detections = set(), set()
        for _, t, d in sorted(candidates, reverse=True):
            if t in used_tracks or d in used_detections:
                continue
            used_tracks.add(t)
            used_detections.add(d)
            detections[d].track_id = tracks[t]["id"]
            tracks[t].update(box=detections[d].box, last=frame_number)
        for d, detection in enumerate(detections):
            if d not in used_detections:
                detection.track_id = len(tracks)
                tracks.append({"id": len(tracks), "box": detection.box, "last": frame_number})


def _match_score(a: Sequence[float], b: Sequence[float]) -> float:
    overlap = iou(a, b)
    size = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1], 1.0)
    distance = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2) / size
    if overlap <= 0 and distance > 1.0:
        return 0.0
    return overlap + max(0.0, 1.0 - distance)
