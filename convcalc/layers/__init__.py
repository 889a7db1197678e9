"""Layer families, one module per family, each imported on first use (see ``catalog.py``)."""

from .base import IDENTITY, Layer, Shape, Window, layer_names, lookup, make_layer

__all__ = ["IDENTITY", "Layer", "Shape", "Window", "layer_names", "lookup", "make_layer"]
