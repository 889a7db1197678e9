"""convcalc: output shapes, parameters and compute of convolutional networks, as PyTorch computes them.

>>> import convcalc
>>> conv = convcalc.layer("Conv2d", in_channels=3, out_channels=96, kernel_size=11, stride=4)
>>> conv.output_shape((1, 3, 227, 227))
(1, 96, 55, 55)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConvcalcError, ShapeError, SpecError
from .layers import Layer, layer_names

if TYPE_CHECKING:
    from .graph import Model
    from .summarize import ModelSummary


def layer(type_name: str, /, **kwargs: Any) -> Layer:
    """A layer from its torch class name and torch keyword arguments (spec aliases work too).

    Raises SpecError for an argument torch's constructor would refuse.
    """
    from .layers import make_layer

    return make_layer(type_name, **kwargs)


__all__ = ["Block", "ConvcalcError", "Layer", "ShapeError", "SpecBuilder", "SpecError", "layer", "layer_names", "load_model", "summary"]


def __getattr__(name: str) -> Any:
    """``convcalc.SpecBuilder`` and ``convcalc.Block`` (build a spec from Python), imported on first use."""
    if name in ("SpecBuilder", "Block"):
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'convcalc' has no attribute {name!r}")


def load_model(path: str) -> Model:
    """Load a YAML model spec; ``.summary()`` gives the rows ``convcalc model`` prints."""
    from .graph import load_model as _load

    return _load(path)


def summary(model: Any, input_size: Any = None, **options: Any) -> ModelSummary:
    """torchinfo's ``summary(model, input_size)``, checked against torch: an nn.Module, a spec path,
    a packaged example's name, a loaded model or a :class:`SpecBuilder`; see :func:`convcalc.summarize.summary`."""
    from .summarize import summary as _summary

    return _summary(model, input_size, **options)
