"""Layer families: one module per family, all registered by torch class name."""

from . import conv, pool  # noqa: F401  (registers the families)
from .base import IDENTITY, Layer, Shape, Window, layer_names, lookup, make_layer

__all__ = ["IDENTITY", "Layer", "Shape", "Window", "layer_names", "lookup", "make_layer"]
