"""lucid.models: the InceptionNeXt family, a timm-style registry and a model summary.

    from lucid.models import create_model, list_models, summary
    model = create_model("inception_next_tiny", num_classes=100)
    print(summary(model, (1, 3, 224, 224)))
"""
from .registry import create_model, is_model, list_models, register_model
from .inception_next import (ConvMlp, InceptionDWConv2d, InceptionNeXt, MetaNeXt, MetaNeXtBlock, inception_next_atto,
                             inception_next_base, inception_next_small, inception_next_tiny)
from . import fusion  # noqa: F401  registers the InceptionNeXt modules with lucid.nn.fuse
from .summary import ModelSummary, summary

__all__ = ["create_model", "list_models", "register_model", "is_model", "summary", "ModelSummary", "InceptionNeXt",
           "MetaNeXt", "ConvMlp", "InceptionDWConv2d", "MetaNeXtBlock", "inception_next_atto", "inception_next_tiny",
           "inception_next_small", "inception_next_base"]
