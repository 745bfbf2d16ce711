"""Tasks run by the django-q2 worker. Each is a plain function that takes ids, not objects."""

import os


def ping(message: str) -> dict:
    """Echo a message from the worker process: proves a worker picks up and runs tasks."""
    return {"message": message, "worker_pid": os.getpid()}
