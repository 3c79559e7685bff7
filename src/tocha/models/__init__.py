"""Model families; importing this package registers them all."""

from tocha.models import linear, mlp, resnet, tinyvgg  # noqa: F401  (registration side effect)
from tocha.models.head import classifier_name, get_classifier, reset_classifier
from tocha.models.registry import (
    check_model_fits,
    config_options,
    create_model,
    get_factory,
    list_models,
    model_from_config,
    model_on_meta,
    model_options,
)

__all__ = [
    "check_model_fits",
    "classifier_name",
    "config_options",
    "create_model",
    "get_classifier",
    "get_factory",
    "list_models",
    "model_from_config",
    "model_on_meta",
    "model_options",
    "reset_classifier",
]
