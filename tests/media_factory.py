"""Test media made on the fly: nothing generated is committed."""

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int, size: tuple[int, int] = (160, 120), fps: float = 25.0) -> Path:
    """An MPEG-4 Part 2 video whose frame i is filled with grey level i (so frames are tellable)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8))
    writer.release()
    return path


def write_h264(
    path: Path, frames: int, size: tuple[int, int] = (160, 120), keyframe_every: int = 250, rotation: int = 0
) -> Path:
    """An H.264 video with B-frames (x264's defaults) whose frame i has grey level 7*i (mod
    256) with a white square in its top-left corner (so frames and their orientation are
    tellable); `rotation`: counterclockwise degrees in its display matrix, as a phone writes."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": str(keyframe_every), "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            image = np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8)
            image[:16, :16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames_from(source: Path, path: Path, count: int, step: int = 1) -> Path:
    """A short video made of frames of a real video (every `step`-th, `count` of them)."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps / step, (width, height))
    written = index = 0
    while written < count:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            writer.write(frame)
            written += 1
        index += 1
    capture.release()
    writer.release()
    return path


def blank_photo(path: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """A photo with no face: a smooth colour gradient."""
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    image = np.stack([np.tile(x, (size[1], 1))] * 3, axis=-1)
    image[..., 1] = 128
    cv2.imwrite(str(path), image)
    return path


def write_y4m(source: Path, path: Path, seconds: float = 3.0, width: int = 640) -> Path:
    """A raw YUV4MPEG2 clip (what Chromium's fake camera plays) from the start of a real video."""
    capture = cv2.VideoCapture(str(source))
    fps = round(capture.get(cv2.CAP_PROP_FPS) or 25)
    with path.open("wb") as out:
        for i in range(int(seconds * fps)):
            ok, frame = capture.read()
            if not ok:
                break
            height = round(frame.shape[0] * width / frame.shape[1] / 2) * 2
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            if i == 0:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()
    return path


def jpeg_frame(source: Path, index: int = 0, quality: int = 85) -> bytes:
    """Frame `index` of a real video as JPEG bytes (what the live page sends)."""
    capture = cv2.VideoCapture(str(source))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read frame {index} of {source}"
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()
