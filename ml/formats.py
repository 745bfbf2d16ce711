"""What input the engine accepts: container signatures told from a file's first bytes, the
frame counts a video may be analysed at, and the live frame limit. Pure Python: the web
process uses it to refuse input before it reaches the engine, without importing OpenCV or
torch."""

# Frames sampled from a video, spread evenly over its whole length (the user chooses).
MIN_FRAMES = 10
MAX_FRAMES = 100
DEFAULT_FRAMES = 32

# The largest camera frame the live service scores (a 640-px JPEG is ~50 kB); the web API
# refuses larger bodies unread, with the same figure.
MAX_FRAME_BYTES = 4 * 1024 * 1024

# (offset, signature) of containers OpenCV/FFmpeg decode video from.
VIDEO_SIGNATURES = [
    (4, b"ftyp"),  # ISO base media: MP4, MOV, M4V, 3GP (HEIF photos too: see below)
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"RIFF"),  # AVI when bytes 8-12 say so (WAV and WebP are RIFF too)
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"\x00\x00\x01\xb3"),  # MPEG video
    (0, b"FLV"),
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
]
# ISO base media brands of HEIF/AVIF still images, which this service does not decode.
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}


def container_kind(head: bytes) -> str | None:
    """'video' for a video container, 'heif' for a HEIF/AVIF photo, else None (not a video)."""
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return "heif"
    for offset, signature in VIDEO_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if signature == b"RIFF" and head[8:12] != b"AVI ":
                return None
            return "video"
    return None
