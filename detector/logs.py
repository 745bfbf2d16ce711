"""Logging helpers for the settings' LOGGING."""

import logging


class ScheduledTasksAtDebug(logging.Filter):
    """django-q2's scheduler logs "created task ... from schedule [...]" at INFO for every
    scheduled run (three a minute here: requeue, reap, webhook retries). They are routine: this
    moves them to DEBUG, so they show only when DEEPFAKE_LOG_LEVEL=DEBUG."""

    def __init__(self, level: str = "INFO") -> None:
        super().__init__()
        self.level = logging.getLevelName(level.upper()) if isinstance(level, str) else level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "django-q" and record.levelno == logging.INFO and "from schedule [" in record.getMessage():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.level
