"""A network's forward pass on the CPU through ONNX Runtime: the same function as PyTorch's,
in float32, faster.

On these 2-core machines the shipped models' EfficientNet-Lite0 trunk runs 1.4x (two threads)
to 1.5x (one thread) faster under ONNX Runtime than in PyTorch, batch-norm folding and
channels-last memory included (16 face crops: 150 -> 107 ms, 293 -> 191 ms). Its depthwise
convolutions are faster there, and ONNX Runtime folds TensorFlow's asymmetric "same" padding
into each strided convolution instead of making a padded copy of the input (77 MB for the
second block's 16 crops), provided the exported pads are constants (`SameConv2d`: a fifth less
time again, 11.7 -> 9.3 ms a face on one thread). The outputs agree with PyTorch's to about
3e-5 on features of size 6: float32 summed in another order. The expression model
(`ml.emotion`) runs 4-5x faster there (64 faces: 161 -> 34 ms on one thread), its batch norms
folded by ONNX Runtime's graph optimisations.

MTCNN's networks stay in PyTorch: on the channels-last inputs it gives them, P-Net ran slower
under ONNX Runtime (a whole pyramid of 5 frames: 90 -> 110 ms on one thread, 50 -> 60 ms on
two), and R-Net and O-Net 1.6x slower.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import torch

log = logging.getLogger(__name__)

INPUT = "input"


class OnnxFunction:
    """`module`'s forward, exported once (for inputs shaped like `example`, any batch size)
    and run by ONNX Runtime on the CPU with as many threads as torch uses at each call.

    Raises `RuntimeError` when the module does not export (an operation ONNX lacks) or
    ONNX Runtime is not installed; the caller then keeps PyTorch.
    """

    def __init__(self, module: torch.nn.Module, example: torch.Tensor) -> None:
        try:
            import onnxruntime  # noqa: F401  (the engine's CPU dependency; a GPU machine may lack it)
        except ImportError as exc:
            raise RuntimeError("onnxruntime is not installed") from exc
        buffer = io.BytesIO()
        try:
            # The TorchScript-based exporter: torch is pinned, and the newer exporter would need
            # onnxscript besides onnx. Its tracer warns about Python-computed padding, which is
            # right for the one input size a model takes.
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module.eval(),
                    (example.cpu(),),
                    buffer,
                    dynamo=False,
                    input_names=[INPUT],
                    dynamic_axes={INPUT: {0: "batch"}},
                )
        except Exception as exc:  # the exporter raises many kinds; each means: stay with PyTorch
            raise RuntimeError(f"{type(module).__name__} does not export to ONNX: {exc}") from exc
        self.graph = buffer.getvalue()
        self._sessions: dict[int, object] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The module's first output for `x` (any memory layout), as a float32 CPU tensor."""
        session = self._session(torch.get_num_threads())
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(session.run(None, {INPUT: array})[0])

    def _session(self, threads: int):
        if threads not in self._sessions:
            import onnxruntime

            _share_one_arena()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # ONNX Runtime's threads otherwise spin for a while after each run, taking the cores
            # from the PyTorch and decoding work that follows on a 2-core machine.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # Memory: every session draws on the process's one arena, and no block is planned
            # and kept per input shape (batches of 16 and their remainders). With a session's
            # own arena and plans, a process with the video and photo models peaked at 2,500 MiB
            # against 1,782 MiB in PyTorch; so, at 1,974 MiB, with the same speed.
            options.add_session_config_entry("session.use_env_allocators", "1")
            options.enable_mem_pattern = False
            self._sessions[threads] = onnxruntime.InferenceSession(
                self.graph, options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[threads]


_arena_shared = False


def _share_one_arena() -> None:
    """Registers, once per process, the CPU memory arena all sessions share."""
    global _arena_shared
    if not _arena_shared:
        import onnxruntime

        memory = onnxruntime.OrtMemoryInfo(
            "Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, onnxruntime.OrtMemType.DEFAULT
        )
        onnxruntime.create_and_register_allocator(memory, onnxruntime.OrtArenaCfg(0, -1, -1, -1))
        _arena_shared = True
