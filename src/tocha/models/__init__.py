"""Model families; importing this package registers them all."""

from tocha.models import linear, mlp, resnet, tinyvgg  # noqa: F401  (registration side effect)
from tocha.models.registry import create_model, list_models, model_from_config, model_options

__all__ = ["create_model", "list_models", "model_from_config", "model_options"]
