"""Both multitask variants: distillation to a frozen teacher, and CE on an ImageNet-format folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepproduct.training.data.imagenet_folder import (
    ImageNetFolder,
    ImageNetFolderError,
    imagenet_synsets,
    infinite_batches,
)
from deepproduct.training.losses import (
    DistillationLoss,
    distillation,
    imagenet_ce,
    make_frozen_teacher,
    resolve_variant,
)


def test_distillation_zero_for_identical_logits() -> None:
    z = torch.randn(5, 1000, generator=torch.Generator().manual_seed(0))
    assert distillation(z, z.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_distillation_hand_value_two_classes() -> None:
    # T = 2. teacher z = (2 ln 3, 0) -> z/T = (ln 3, 0) -> p_t = (3/4, 1/4); student z = (0, 0) -> (1/2, 1/2)
    # KL(p_t || p_s) = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.304099 - 0.173287 = 0.130812;  T^2 * KL = 0.523248
    teacher = torch.tensor([[2 * math.log(3.0), 0.0]] * 2)  # two identical rows: the batch mean is the same
    student = torch.zeros(2, 2, requires_grad=True)
    expected = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert expected == pytest.approx(0.523248, abs=1e-6)
    loss = DistillationLoss(temperature=2.0)(student, teacher)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    # gradient wrt student logits: T^2 * (p_s - p_t) / T / batch = 2 * (1/2 - 3/4) / 2 = -0.25 on class 0
    assert student.grad[0, 0].item() == pytest.approx(-0.25, abs=1e-6)
    with pytest.raises(ValueError, match="shape"):
        distillation(torch.zeros(2, 3), torch.zeros(2, 2))


def test_frozen_teacher_and_variant_choice() -> None:
    net = torch.nn.Linear(4, 3)
    teacher = make_frozen_teacher(net)
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(net.weight, teacher.weight)  # a copy, not a view
    assert resolve_variant("auto", None) == "distillation"
    assert resolve_variant("auto", "/data/imagenet") == "imagenet"
    with pytest.raises(ValueError, match="imagenet_folder"):
        resolve_variant("imagenet", None)
    with pytest.raises(ValueError, match="unknown multitask variant"):
        resolve_variant("imgnet", None)


def write_folder(root: Path) -> list[str]:
    """Two synset folders (tench, goldfish) with 4 small images each, plus an unrelated folder."""
    synsets = list(imagenet_synsets()[:2])
    rng = np.random.default_rng(0)
    for c, synset in enumerate(synsets):
        (root / synset).mkdir(parents=True)
        for i in range(4):
            base = np.array([200, 40, 40] if c == 0 else [40, 40, 200], np.uint8)
            img = np.clip(base + rng.integers(-30, 30, (40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / synset / f"{synset}_{i}.JPEG", quality=90)
    (root / "not_a_synset").mkdir()
    (root / "README.txt").write_text("not an image folder")
    return synsets


def test_imagenet_folder_reader(tmp_path: Path) -> None:
    synsets = write_folder(tmp_path)
    assert synsets == ["n01440764", "n01443537"]
    ds = ImageNetFolder(tmp_path, image_size=32)
    assert len(ds) == 8 and ds.classes == [0, 1] and ds.ignored_folders == ["not_a_synset"]
    x, y = ds[5]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y == 1
    it = infinite_batches(ds, batch_size=6, seed=0)
    shapes = [tuple(next(it)[0].shape) for _ in range(3)]  # more images than the folder holds: keeps going
    assert shapes == [(6, 3, 32, 32)] * 3


def test_imagenet_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cats" / "a.jpg")
    with pytest.raises(ImageNetFolderError, match="no ImageNet-1k synset sub-folder.*cats"):
        ImageNetFolder(tmp_path)
    with pytest.raises(ImageNetFolderError, match="does not exist"):
        ImageNetFolder(tmp_path / "missing")
    (tmp_path / "n01440764").mkdir()
    with pytest.raises(ImageNetFolderError, match="hold no images"):
        ImageNetFolder(tmp_path)
    (tmp_path / "n01440764" / "broken.JPEG").write_bytes(b"not a jpeg")
    with pytest.raises(ImageNetFolderError, match="broken.JPEG"):
        ImageNetFolder(tmp_path)[0]


def test_imagenet_ce_on_folder_lowers_with_a_step(tmp_path: Path) -> None:
    from deepproduct.training.models import build_embedding_net

    write_folder(tmp_path)
    torch.manual_seed(0)
    net = build_embedding_net("tiny_cnn", embedding_dim=16, pretrained=False)
    ds = ImageNetFolder(tmp_path, image_size=64, train=False)
    x, y = next(infinite_batches(ds, batch_size=8, seed=0))
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.05)
    before = imagenet_ce(net.forward_train(x).logits, y)
    assert torch.isfinite(before) and before.item() > 0
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = imagenet_ce(net.forward_train(x).logits, y)
    assert after.item() < before.item()
