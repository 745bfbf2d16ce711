"""The CNN trunk under ONNX Runtime computes what PyTorch computes, and a model that does not
export keeps PyTorch. The shipped models on real videos: `test_no_loss.py`."""

import copy

import pytest
import torch

from ml.calibration import Calibration
from ml.checkpoint import Checkpoint
from ml.inference import Detector, _Trunk
from ml.models import create_model, list_models
from ml.runtime import OnnxFunction


@pytest.mark.parametrize("name", list_models())
def test_every_architectures_trunk_exports_and_computes_the_same_features(name):
    torch.manual_seed(0)
    # ImageNet weights where there are some: random EfficientNets give features of 1e-7.
    model = create_model(name, pretrained=name.startswith("efficientnet")).optimize_for_inference()
    size = model.config.input_size
    trunk = OnnxFunction(_Trunk(model), torch.zeros(1, 3, size, size))
    for batch in (1, 5):  # exported with a batch of one; any batch size runs
        x = torch.randn(batch, 3, size, size)
        with torch.no_grad():
            expected = model.forward_features(x)
        features = trunk(x.contiguous(memory_format=torch.channels_last))
        assert features.shape == expected.shape
        assert expected.abs().max() > 0.1
        torch.testing.assert_close(features, expected, atol=1e-4 * expected.abs().max().item(), rtol=1e-4)


def test_the_thread_count_is_torchs_at_each_call():
    model = create_model("mesonet4").optimize_for_inference()
    trunk = OnnxFunction(_Trunk(model), torch.zeros(1, 3, 256, 256))
    x = torch.randn(2, 3, 256, 256)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = trunk(x)
        torch.set_num_threads(2)
        two = trunk(x)
    finally:
        torch.set_num_threads(threads)
    assert sorted(trunk._sessions) == [1, 2]
    torch.testing.assert_close(one, two, atol=1e-5, rtol=1e-5)


class Eigenvalues(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigh(x[0, 0])[0]  # no ONNX operator for it


def test_a_module_that_does_not_export_is_refused_with_the_reason():
    with pytest.raises(RuntimeError, match=r"Eigenvalues does not export to ONNX: .*linalg_eigh"):
        OnnxFunction(Eigenvalues(), torch.zeros(1, 1, 4, 4))


def checkpoint_of(model) -> Checkpoint:
    return Checkpoint(model=model, calibration=Calibration())


def test_a_detector_runs_the_trunk_under_onnx_runtime_on_the_cpu_unless_told_otherwise():
    checkpoint = checkpoint_of(create_model("mesonet4").eval())

    def trunk(**options):
        return Detector(checkpoint, device="cpu", face_detector=object(), **options).trunk

    assert isinstance(trunk(), OnnxFunction)
    assert not isinstance(trunk(runtime="torch"), OnnxFunction)
    assert not isinstance(trunk(precision="bf16"), OnnxFunction)
    with pytest.raises(ValueError, match="runtime must be"):
        Detector(checkpoint, device="cpu", runtime="tensorrt", face_detector=object())
    with pytest.raises(ValueError, match="float32 on the CPU only"):
        Detector(checkpoint, device="cpu", precision="bf16", runtime="onnxruntime", face_detector=object())


def test_a_model_whose_trunk_does_not_export_keeps_pytorch_unless_onnx_runtime_is_required():
    model = create_model("mesonet4").eval()
    model.forward_features = lambda x: Eigenvalues()(x)
    checkpoint = checkpoint_of(model)
    detector = Detector(checkpoint, device="cpu", face_detector=object())
    assert not isinstance(detector.trunk, OnnxFunction)
    x = torch.randn(1, 1, 4, 4)
    torch.testing.assert_close(detector.trunk(x), Eigenvalues()(x))
    with pytest.raises(RuntimeError, match="does not export"):
        Detector(copy.deepcopy(checkpoint), device="cpu", runtime="onnxruntime", face_detector=object())


def test_the_efficientnet_trunks_strided_convolutions_pad_themselves_under_onnx_runtime(tmp_path):
    """TensorFlow's "same" padding is a Pad before each strided convolution. ONNX Runtime folds
    it into the convolution only when its pads are constants and its value is stated; else the
    padded copy (and, on x86, a layout change to make it and back) costs a fifth of the trunk."""
    import onnx
    import onnxruntime

    model = create_model("efficientnet", pretrained=True).optimize_for_inference()
    trunk = OnnxFunction(_Trunk(model), torch.zeros(1, 3, 224, 224))
    exported = onnx.load_from_string(trunk.graph)
    assert sum(node.op_type == "Pad" for node in exported.graph.node) == 5  # the stem and 4 blocks
    assert not any(node.op_type == "Shape" for node in exported.graph.node)

    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(trunk.graph, options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(options.optimized_model_filepath)
    assert not [node.name for node in optimized.graph.node if node.op_type == "Pad"]
