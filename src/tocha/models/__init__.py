"""Model families; importing this package registers them all."""

# Registration is a side effect of importing a family; the notes' models first, then ImageNet's.
from tocha.models import linear, mlp, resnet, tinyvgg  # noqa: F401, I001
from tocha.models import backbones  # noqa: F401, I001
from tocha.models import text_models  # noqa: F401, I001
from tocha.models.head import classifier_name, get_classifier, head_of, reset_classifier
from tocha.models.registry import config_options, create_model, get_factory, list_models, model_options

__all__ = [
    "classifier_name",
    "config_options",
    "create_model",
    "get_classifier",
    "get_factory",
    "head_of",
    "list_models",
    "model_options",
    "reset_classifier",
]
