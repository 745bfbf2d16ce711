"""Typed errors of the engine. Each carries a stable `reason` code the service stores."""


class EngineError(Exception):
    """Base class: `reason` is a short stable code, the message is for people."""

    reason = "internal_error"


class UnreadableMediaError(EngineError):
    """The file is not a decodable image or video (corrupt, truncated, empty, wrong type)."""

    reason = "unreadable_media"


class UnsupportedMediaError(EngineError):
    """The file decodes, but is of a kind the engine does not analyse (e.g. audio only)."""

    reason = "unsupported_type"


class MediaTooLargeError(EngineError):
    """The media exceeds the engine's limits (pixels of a photo, e.g. a decompression bomb)."""

    reason = "too_large"


class ModelUnavailableError(EngineError):
    """A checkpoint is missing, corrupt or does not match the architecture it names."""

    reason = "model_unavailable"
