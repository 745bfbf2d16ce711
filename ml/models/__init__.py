"""Detector models behind a registry: `create_model(name, checkpoint=...)`, `list_models()`."""

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
