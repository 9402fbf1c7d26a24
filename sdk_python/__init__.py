"""DeepProduct reference SDK: what the phone does, in Python.

Imports numpy, Pillow and onnxruntime only (never torch), so that an app backend or a
catalogue-indexing job can run it without the training stack. The common entry points are
re-exported here; the modules (``preprocessing``, ``gallery_index``, ``embedders``, ``search``,
``index_format``, ``model_manifest``) hold the rest.
"""

from .embedders import LiteRTEmbedder, OnnxEmbedder, load_embedder
from .gallery_index import GalleryIndex, SearchHit
from .model_manifest import ModelManifest, load_model_manifest
from .preprocessing import ImageDecodeError, PreprocessingSpec, preprocess_image
from .search import ProductSearch
from .version import __version__

__all__ = ["GalleryIndex", "ImageDecodeError", "LiteRTEmbedder", "ModelManifest", "OnnxEmbedder",
           "PreprocessingSpec", "ProductSearch", "SearchHit", "__version__", "load_embedder",
           "load_model_manifest", "preprocess_image"]
