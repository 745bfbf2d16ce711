import pytest


@pytest.fixture(scope="session")
def face_detector():
    from ml.inference import shared_face_detector

    return shared_face_detector("cpu")
