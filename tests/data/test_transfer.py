"""The real-image transfer benchmark generator (``dp-data transfer``): format, determinism, the
photo/drawing rule, region geometry, and the bad-input errors (empty or unreadable source folder,
a transfer set sharing products with training)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from deepproduct.sdk.dataset_manifest import DatasetRow, read_dataset_manifest, write_dataset_manifest
from deepproduct.training.data.transfer import (
    PRODUCT_PREFIX,
    SourceSet,
    check_disjoint,
    generate_transfer_dataset,
)
from deepproduct.training.data.transfer_sources import (
    TransferSourceError,
    _overlap,
    cutout_product,
    folder_files,
    is_photographic,
    load_image,
    photo_regions,
)
from deepproduct.training.data_cli import main as dp_data

skimage_data = pytest.importorskip("skimage.data")


def _photo(name: str, size: int = 420) -> Image.Image:
    img = Image.fromarray(getattr(skimage_data, name)()).convert("RGB")
    return img.resize((size, round(size * img.height / img.width)))


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory) -> Path:
    """Three real photographs (scikit-image's) in ``photos/`` and one photographic cut-out (the
    cat's face with an elliptical alpha) in ``cutouts/``: tiny source folders every checkout has."""
    d = tmp_path_factory.mktemp("src")
    (d / "photos").mkdir()
    (d / "cutouts").mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        _photo(name).save(d / "photos" / f"{name}.jpg", quality=92)
    face = _photo("chelsea", 400).crop((100, 20, 260, 180)).convert("RGBA")
    mask = Image.new("L", face.size, 0)
    ImageDraw.Draw(mask).ellipse((8, 8, 152, 152), fill=255)
    face.putalpha(mask)
    face.save(d / "cutouts" / "cat_cutout.png")
    return d


def _sources(d: Path) -> SourceSet:
    return SourceSet.resolve([], [d / "photos", d / "cutouts"])


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "transfer.json":
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_generates_test_only_consumer_to_shop_manifest(source_dir, tmp_path):
    out = tmp_path / "tr"
    path = generate_transfer_dataset(out, n_products=8, seed=3, sources=_sources(source_dir),
                                     image_size=96)
    m = read_dataset_manifest(path)
    assert len(m.products()) == 8 and m.products("train") == []
    assert {r.split for r in m.rows} == {"test"}
    for pid in m.products():
        assert pid.startswith(PRODUCT_PREFIX)
        rows = [r for r in m.rows if r.product_id == pid]
        assert sorted(r.domain for r in rows) == ["shop", "user", "user"]
    kinds = {r.attributes["kind"] for r in m.rows}
    assert kinds == {"cutout", "region"}  # the round-robin over sources reaches the single cut-out
    assert {r.attributes["source"] for r in m.rows} == {"dir-photos", "dir-cutouts"}
    with Image.open(m.abspath(m.select("test", "user")[0])) as q:
        assert q.size == (96, 128)  # 3:4 portrait phone photo


def test_deterministic_for_a_seed(source_dir, tmp_path):
    src = _sources(source_dir)
    a = generate_transfer_dataset(tmp_path / "a", 5, seed=1, sources=src, image_size=80).parent
    b = generate_transfer_dataset(tmp_path / "b", 5, seed=1, sources=src, image_size=80).parent
    c = generate_transfer_dataset(tmp_path / "c", 5, seed=2, sources=src, image_size=80).parent
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_photographic_rule_separates_photos_from_drawings():
    photo = _photo("coffee", 200).convert("RGBA")
    drawing = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    d = ImageDraw.Draw(drawing)
    d.ellipse((10, 10, 190, 190), fill=(220, 40, 40, 255), outline=(0, 0, 0, 255), width=4)
    d.rectangle((70, 70, 130, 130), fill=(250, 250, 250, 255))
    assert is_photographic(photo)
    assert not is_photographic(drawing)  # 3 colours
    assert cutout_product(Path("d.png"), drawing, "x", "id") is None
    opaque = _photo("coffee", 200).convert("RGBA")  # a photo without transparency is no cut-out
    assert cutout_product(Path("o.png"), opaque, "x", "id") is None


def test_regions_stay_inside_are_distinct_and_skip_plain_areas():
    photo = _photo("astronaut", 512)
    boxes = photo_regions(photo, np.random.default_rng(0))
    assert 3 <= len(boxes) <= 10
    for i, (x0, y0, s) in enumerate(boxes):
        assert 0 <= x0 and 0 <= y0 and x0 + s <= 512 and y0 + s <= 512
        assert 0.28 * 512 <= s <= 0.5 * 512
        assert all(_overlap(boxes[i], b) <= 0.15 for b in boxes[:i])
    assert photo_regions(Image.new("RGB", (512, 512), (120, 130, 140)), np.random.default_rng(0)) == []
    assert _overlap((0, 0, 10), (5, 5, 10)) == pytest.approx(0.25)  # hand-checked: 5 x 5 of 10 x 10


def test_empty_and_unreadable_sources_are_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TransferSourceError, match="empty: source folder has no images"):
        folder_files(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(TransferSourceError, match="broken.jpg: cannot read image"):
        load_image(bad / "broken.jpg")
    with pytest.raises(TransferSourceError, match="broken.jpg: cannot read image"):
        generate_transfer_dataset(tmp_path / "o", 4, sources=SourceSet.resolve([], [bad]), image_size=64)
    with pytest.raises(TransferSourceError, match="unknown source 'nope'"):
        SourceSet.resolve(["nope"])
    result = CliRunner().invoke(dp_data, ["transfer", "--out", str(tmp_path / "o2"), "--sources", "none-such",
                                          "--source", str(empty)])
    assert result.exit_code != 0 and "unknown source 'none-such'" in result.output
    result = CliRunner().invoke(dp_data, ["transfer", "--out", str(tmp_path / "o3"), "--sources", "skimage",
                                          "--source", str(empty)])
    assert result.exit_code != 0 and "source folder has no images" in result.output


def test_transfer_sharing_products_with_training_is_refused(source_dir, tmp_path):
    path = generate_transfer_dataset(tmp_path / "tr", 3, sources=_sources(source_dir), image_size=64)
    pid = read_dataset_manifest(path).products()[0]
    clean = write_dataset_manifest([DatasetRow("a.jpg", "p00001", "shop", "train", {}, ())], tmp_path / "train.csv")
    check_disjoint(path, clean)  # disjoint: no error
    leaky = write_dataset_manifest([DatasetRow("a.jpg", pid, "shop", "train", {}, ())], tmp_path / "leaky.csv")
    with pytest.raises(ValueError, match=f"shares 1 product id.*{pid}"):
        check_disjoint(path, leaky)
    result = CliRunner().invoke(dp_data, ["transfer", "--out", str(tmp_path / "tr2"), "--products", "3",
                                          "--sources", "", "--source", str(source_dir / "photos"),
                                          "--source", str(source_dir / "cutouts"), "--image-size", "64",
                                          "--train-manifest", str(leaky)])
    assert result.exit_code != 0 and "must be disjoint from training" in result.output
