"""ImageNet-format folder reader for the multitask branch (docs/method.md section 3, paper's variant).

Layout: ``ROOT/<synset>/<image>`` with synset folders such as ``n01440764/*.JPEG`` (the ILSVRC
train layout; any subset of the 1000 classes). The synset -> class index map is the standard
1000-class order of the ImageNet classifier, taken from ``timm.data.ImageNetInfo`` (no retyped
list). Folders that are not ImageNet-1k synsets are ignored (listed in ``ignored_folders``); a root
with no known synset folder is an error that says so. Items are ``(image tensor in [0, 1], class)``
-- the embedding network normalises internally.

torchvision's ``ImageFolder`` is not used because it numbers the classes by the sorted folders
*present*, which for a subset would not match the classifier's 1000 outputs.

:func:`infinite_batches` yields ``(images, classes)`` batches of exactly ``batch_size`` forever
(reshuffled every pass, seeded), so each training step can draw B_img images with ``next()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


class ImageNetFolderError(ValueError):
    """An ImageNet folder that cannot be used; the message names the folder or file."""


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ImageNet-1k synsets in classifier order (from timm)."""
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo("imagenet-1k").label_names())


def imagenet_transform(image_size: int, train: bool = True) -> v2.Compose:
    """Standard ImageNet training crop (or resize + centre crop), output RGB float in [0, 1]."""
    ops: list = [v2.ToImage()]
    if train:
        ops += [v2.RandomResizedCrop(image_size, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    else:
        ops += [v2.Resize(round(image_size * 256 / 224), antialias=True), v2.CenterCrop(image_size)]
    ops.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(ops)


class ImageNetFolder(Dataset):
    """``(image, class index)`` pairs from an ImageNet-format folder of synset sub-folders."""

    def __init__(self, root: str | Path, image_size: int = 224, train: bool = True,
                 transform=None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ImageNetFolderError(f"ImageNet folder {str(self.root)!r} does not exist or is not a folder")
        index = {s: i for i, s in enumerate(imagenet_synsets())}
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        known = [p for p in folders if p.name in index]
        self.ignored_folders = [p.name for p in folders if p.name not in index]
        if not known:
            seen = ", ".join(p.name for p in folders[:5]) or "no sub-folders"
            raise ImageNetFolderError(
                f"ImageNet folder {str(self.root)!r} has no ImageNet-1k synset sub-folder (like n01440764/); "
                f"found: {seen}")
        self.samples: list[tuple[str, int]] = []
        for folder in known:
            for f in sorted(folder.iterdir()):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                    self.samples.append((str(f), index[folder.name]))
        if not self.samples:
            raise ImageNetFolderError(f"ImageNet folder {str(self.root)!r}: the synset folders "
                                      f"({', '.join(p.name for p in known[:5])}) hold no images")
        self.classes = sorted({c for _, c in self.samples})
        self.transform = transform if transform is not None else imagenet_transform(image_size, train)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, target = self.samples[i]
        try:
            with Image.open(path) as im:
                image = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, ValueError) as exc:
            raise ImageNetFolderError(f"ImageNet image {path!r} cannot be read: {exc}") from exc
        return self.transform(image), target


class InfiniteBatchSampler(Sampler[list[int]]):
    """Endless batches of exactly ``batch_size`` indices, walking through seeded permutations."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0) -> None:
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        self.n, self.batch_size, self.seed, self.rank = n, batch_size, seed, rank

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank)
        stream: list[int] = []
        while True:
            while len(stream) < self.batch_size:
                stream += torch.randperm(self.n, generator=g).tolist()
            batch, stream = stream[:self.batch_size], stream[self.batch_size:]
            yield batch


def infinite_batches(dataset: Dataset, batch_size: int, seed: int = 0, rank: int = 0,
                     num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An endless iterator of ``(images, classes)`` batches; ``next(it)`` once per training step.

    Different ``rank`` values (DDP) draw different streams from the same seed.
    """
    sampler = InfiniteBatchSampler(len(dataset), batch_size, seed, rank)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                        persistent_workers=num_workers > 0)
    return iter(loader)
