"""Detector models behind a registry: `create_model(name)`, `build_model(config)`,
`list_models()`. Importing this package registers every architecture (each module
registers itself on import, as in timm)."""

from ml.models import efficientnet_detectors, mesonet, resnext_lstm  # noqa: F401  (registration)
from ml.models.base import DeepfakeModel, ModelConfig, fake_probability
from ml.models.registry import build_model, create_model, default_config, list_models, register_model

__all__ = [
    "DeepfakeModel",
    "ModelConfig",
    "build_model",
    "create_model",
    "default_config",
    "fake_probability",
    "list_models",
    "register_model",
]
