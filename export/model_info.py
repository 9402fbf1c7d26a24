"""What every artefact says about itself: the manifest essentials, in one place.

The same key/value pairs go into ONNX ``metadata_props``, Core ML user-defined metadata and the
TFLite model description, so a single model file found without its manifest still tells which
embedding space it belongs to and how to feed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from deepproduct.sdk.preprocessing import PreprocessingSpec

INPUT_NAME = "image"
OUTPUT_NAME = "embedding"
DEFAULT_AUTHOR = "DeepProduct"
DEFAULT_LICENSE = "Apache-2.0"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    backbone: str
    embedding_dim: int
    input_size: int
    embedding_space_id: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    preprocessing: PreprocessingSpec
    author: str = DEFAULT_AUTHOR
    license: str = DEFAULT_LICENSE
    architecture: str = "embedding_net"
    model_config: dict = field(default_factory=dict)

    @property
    def description(self) -> str:
        return (f"DeepProduct product-image embedder ({self.backbone}, {self.embedding_dim}-d, "
                f"L2-normalised). Input: RGB in [0, 1] at {self.input_size}x{self.input_size}; "
                "normalisation is inside the graph.")

    def essentials(self) -> dict[str, str]:
        """Flat string key/values for model-file metadata (all three formats)."""
        return {
            "deepproduct.model_name": self.name,
            "deepproduct.model_version": self.version,
            "deepproduct.backbone": self.backbone,
            "deepproduct.embedding_dim": str(self.embedding_dim),
            "deepproduct.input_size": str(self.input_size),
            "deepproduct.colour_order": "RGB",
            "deepproduct.value_range": "[0, 1]",
            "deepproduct.embedding_space_id": self.embedding_space_id,
            "deepproduct.output": f"{OUTPUT_NAME}: L2-normalised float32 [N, {self.embedding_dim}]",
            "deepproduct.preprocessing": json.dumps(self.preprocessing.to_dict(), sort_keys=True),
        }
