"""Model registry and factory, in the manner of timm: `@register_model` entry points build a
model from a `ModelConfig`; `create_model(name, checkpoint=...)` builds and loads one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ml.models.base import DeepfakeModel, ModelConfig

_MODELS: dict[str, Callable[..., DeepfakeModel]] = {}
_DEFAULT_CONFIGS: dict[str, ModelConfig] = {}


def register_model(default_config: ModelConfig) -> Callable:
    """Register `fn(config, pretrained) -> DeepfakeModel` under `default_config.name`."""

    def decorator(fn: Callable[..., DeepfakeModel]) -> Callable[..., DeepfakeModel]:
        _MODELS[default_config.name] = fn
        _DEFAULT_CONFIGS[default_config.name] = default_config
        return fn

    return decorator


def list_models() -> list[str]:
    _import_architectures()
    return sorted(_MODELS)


def default_config(name: str) -> ModelConfig:
    _import_architectures()
    if name not in _DEFAULT_CONFIGS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_MODELS))}")
    return ModelConfig.from_dict(_DEFAULT_CONFIGS[name].to_dict())


def build_model(config: ModelConfig, pretrained: bool = False) -> DeepfakeModel:
    """A model from a full config (as stored in a checkpoint)."""
    _import_architectures()
    if config.name not in _MODELS:
        raise KeyError(f"unknown model {config.name!r}; known: {', '.join(sorted(_MODELS))}")
    model = _MODELS[config.name](config, pretrained=pretrained)
    model.config = config
    return model


def create_model(
    name: str, checkpoint: str | Path | None = None, pretrained: bool = False, **arch: object
) -> DeepfakeModel:
    """Build a registered model; with `checkpoint`, load it (validated) and its config.

    `pretrained` loads ImageNet weights into the backbone where they ship offline (Lite0).
    Keyword arguments override the default architecture options (e.g. `variant="efficientnet_b4"`).
    """
    if checkpoint is not None:
        from ml.checkpoint import load_checkpoint

        loaded = load_checkpoint(checkpoint, expected_name=name)
        return loaded.model
    config = default_config(name)
    config.arch.update(arch)
    return build_model(config, pretrained=pretrained)


def _import_architectures() -> None:
    # Registration happens on import of each architecture module.
    from ml.models import efficientnet_detectors, mesonet, resnext_lstm  # noqa: F401
