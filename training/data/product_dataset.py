"""Torch datasets over a dataset manifest: training images with phone-photo augmentation, and
evaluation images through the SDK's preprocessing (the one definition the phones use)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from deepproduct.sdk.dataset_manifest import DatasetManifest, DatasetRow
from deepproduct.sdk.preprocessing import ImageDecodeError, PreprocessingSpec, decode_image, preprocess_image

DOMAIN_CODES = {"shop": 0, "user": 1}


class DataError(ValueError):
    """Training data that cannot be used; the message names the manifest row or file."""


@dataclass(frozen=True)
class Item:
    path: str
    label: int  # product index within the split
    domain: int  # 0 = shop, 1 = user
    row: DatasetRow


def items_for_split(manifest: DatasetManifest, split: str) -> tuple[list[Item], list[str]]:
    """The split's images with dense product labels; the label order is the sorted product ids."""
    rows = manifest.select(split=split)
    products = sorted({r.product_id for r in rows})
    index = {p: i for i, p in enumerate(products)}
    items = [Item(str(manifest.abspath(r)), index[r.product_id], DOMAIN_CODES[r.domain], r) for r in rows]
    return items, products


def check_images_exist(items: list[Item], manifest: DatasetManifest) -> None:
    """Fail early, naming rows, when manifest rows point at missing files."""
    missing = [(i, it.row.path) for i, it in enumerate(items) if not _exists(it.path)]
    if missing:
        shown = "; ".join(f"{p}" for _, p in missing[:5])
        raise DataError(f"{manifest.csv_path}: {len(missing)} image(s) listed in the manifest are missing: "
                        f"{shown}{' ...' if len(missing) > 5 else ''}")


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def train_transform(image_size: int, augment: bool) -> v2.Compose:
    """Mild extra augmentation on top of the data's own phone-photo distortions.

    No horizontal flip: printed text and logos are identity-bearing and must not mirror.
    """
    ops: list = [v2.ToImage()]
    if augment:
        ops += [v2.RandomResizedCrop(image_size, scale=(0.55, 1.0), ratio=(0.8, 1.25), antialias=True),
                v2.ColorJitter(0.25, 0.25, 0.2, 0.03)]
    else:
        ops += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    ops += [v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(ops)


def _open_rgb(item: Item) -> Image.Image:
    try:
        rgb = decode_image(item.path)
    except ImageDecodeError as exc:
        raise DataError(f"manifest row {item.row.path!r} (product {item.row.product_id}): {exc}") from exc
    if rgb.dtype != np.uint8:  # 16-bit or alpha-composited inputs come back as float in [0, 1]
        rgb = np.round(rgb * 255).astype(np.uint8)
    return Image.fromarray(rgb)


class TrainImages(Dataset):
    def __init__(self, items: list[Item], image_size: int, augment: bool = True) -> None:
        self.items = items
        self.transform = train_transform(image_size, augment)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        """``i`` or ``(i, sample_seed)``: with a seed the augmentation draws from its own RNG
        (restored afterwards), so it does not depend on the worker or the process RNG state."""
        if isinstance(i, tuple):
            i, sample_seed = i
            item = self.items[i]
            image = _open_rgb(item)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                return self.transform(image), item.label, item.domain
        item = self.items[i]
        return self.transform(_open_rgb(item)), item.label, item.domain


class EvalImages(Dataset):
    """Evaluation inputs through ``deepproduct.sdk.preprocessing`` so SDK and trainer agree exactly."""

    def __init__(self, items: list[Item], image_size: int, cache: bool = False) -> None:
        self.items = items
        self.spec = PreprocessingSpec.for_input_size(image_size)
        # Per-epoch evaluation sees the same images every time: keep the tensors once decoded.
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        item = self.items[i]
        if self._cache is not None and i in self._cache:
            return self._cache[i], item.label, item.domain
        try:
            x = torch.from_numpy(preprocess_image(item.path, self.spec, layout="NCHW")[0])
        except ImageDecodeError as exc:
            raise DataError(f"manifest row {item.row.path!r} (product {item.row.product_id}): {exc}") from exc
        if self._cache is not None:
            self._cache[i] = x
        return x, item.label, item.domain
