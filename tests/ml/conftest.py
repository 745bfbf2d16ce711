import shutil

import pytest

from tests.conftest import shared_path


@pytest.fixture(scope="session")
def face_detector():
    from ml.inference import shared_face_detector

    return shared_face_detector("cpu")


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    """Four real and four fake LFW face-swap photos in each split (train, val, test)."""
    root = tmp_path_factory.mktemp("tiny_lfw")
    source = shared_path("data", "images", "lfw_faceswap")
    for split in ("train", "val", "test"):
        for label in ("real", "fake"):
            (root / split / label).mkdir(parents=True)
            for path in sorted((source / split / label).glob("*.jpg"))[:4]:
                shutil.copy(path, root / split / label / path.name)
    return root
