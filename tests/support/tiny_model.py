"""A tiny exported model (random CNN -> ONNX + manifest.json) for SDK tests.

Stands in for dp-export's output so the SDK can be tested without training or exporting a
real backbone: same input contract (``image``, NCHW float in [0, 1], dynamic batch), same
output (``embedding``, L2-normalised), the exporter's own minimal schema-valid manifest
(``deepproduct.export.manifest.minimal_manifest``, torch-free). torch is used here only, never by
the SDK.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from deepproduct.export.manifest import minimal_manifest, sha256_file, write_manifest

from .export import legacy_onnx_export

FIXTURE_INPUT_SIZE = 32
FIXTURE_DIM = 16


def make_tiny_module(dim: int = FIXTURE_DIM, seed: int = 0):
    """The random CNN (deterministic for a seed): conv, conv, mean-pool, linear, L2 normalise."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            )
            self.head = nn.Linear(16, dim)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = self.features(image - 0.5).mean(dim=(2, 3))
            return nn.functional.normalize(self.head(x), dim=1)

    return Tiny().eval()


def build_tiny_model(out_dir: Path, dim: int = FIXTURE_DIM, input_size: int = FIXTURE_INPUT_SIZE,
                     seed: int = 0, space_id: str | None = None) -> Path:
    """Write ``model.onnx`` and ``manifest.json`` into ``out_dir``; returns ``out_dir``.

    The embedding-space id is the ONNX file's sha256 unless ``space_id`` (64 hex digits) is given.
    """

    model = make_tiny_module(dim, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = legacy_onnx_export(model, out_dir / "model.onnx", input_size, batch=2)
    manifest = minimal_manifest([("model.onnx", "onnx", "fp32")], name="tiny-test-cnn", backbone="tiny",
                                embedding_dim=dim, input_size=input_size, mean=(0.5, 0.5, 0.5),
                                embedding_space_id=space_id or sha256_file(onnx_path))
    write_manifest(out_dir, manifest)
    return out_dir


def write_catalogue(root: Path, products: int = 6, per_product: int = 2, size: tuple[int, int] = (48, 40),
                    seed: int = 0) -> list[tuple[Path, str, str]]:
    """Coloured-pattern PNG images in ``root/<product>/``; returns (path, product_id, category)."""
    rng = np.random.default_rng(seed)
    out = []
    categories = ["mug", "shoe", "hat"]
    for p in range(products):
        base = rng.integers(0, 256, 3)
        for j in range(per_product):
            arr = np.clip(base + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            arr[: size[1] // 2, : size[0] // 3] = 255 - base  # a product-specific structure
            folder = root / f"p{p:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"img{j}.png"
            Image.fromarray(arr).save(path)
            out.append((path, f"p{p:03d}", categories[p % 3]))
    return out


def write_dataset_manifest(root: Path, catalogue: list[tuple[Path, str, str]]) -> Path:
    """A dataset manifest CSV over ``write_catalogue`` images: img0 = shop, the rest = user photos."""
    lines = ["path,product_id,domain,split,tags,attr_category"]
    for path, product, category in catalogue:
        domain = "shop" if path.stem == "img0" else "user"
        lines.append(f"{path.relative_to(root).as_posix()},{product},{domain},test,,{category}")
    csv = root / "manifest.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv
