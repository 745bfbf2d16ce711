"""The model registry, in the manner of timm: architectures register an entry point with
`@register_model(default_config)` when their module is imported (`ml.models` imports them
all), and `create_model(name)` / `build_model(config)` build one. Loading weights is
`ml.checkpoint.load_checkpoint`'s job: the registry knows no files."""

from __future__ import annotations

from collections.abc import Callable

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
    return sorted(_MODELS)


def default_config(name: str) -> ModelConfig:
    if name not in _DEFAULT_CONFIGS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_MODELS))}")
    return ModelConfig.from_dict(_DEFAULT_CONFIGS[name].to_dict())


def build_model(config: ModelConfig, pretrained: bool = False) -> DeepfakeModel:
    """A model from a full config (as stored in a checkpoint)."""
    if config.name not in _MODELS:
        raise KeyError(f"unknown model {config.name!r}; known: {', '.join(sorted(_MODELS))}")
    model = _MODELS[config.name](config, pretrained=pretrained)
    model.config = config
    return model


def create_model(name: str, pretrained: bool = False, **arch: object) -> DeepfakeModel:
    """A registered model with fresh weights.

    `pretrained` loads ImageNet weights into the backbone where they ship offline (Lite0).
    Keyword arguments override the default architecture options (e.g. `variant="efficientnet_b4"`).
    """
    config = default_config(name)
    config.arch.update(arch)
    return build_model(config, pretrained=pretrained)
