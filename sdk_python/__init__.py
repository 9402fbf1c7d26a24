"""DeepProduct reference SDK: what the phone does, in Python.

Imports numpy, Pillow and onnxruntime only (never torch), so that an app backend or a
catalogue-indexing job can run it without the training stack.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
