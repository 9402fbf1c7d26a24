"""The real-image transfer benchmark generator (``dp-data transfer``): format, determinism, the
photo/drawing rule, region geometry, and the bad-input errors (empty or unreadable source folder,
a transfer set sharing products with training)."""

from __future__ import annotations

import hashlib
import json
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


# -- the source lock, the manifest digest, the print-screen style --------------------------------

@pytest.fixture
def locked_skimage(tmp_path, monkeypatch):
    """The registered ``skimage`` source pointed at a copy of three of its photographs, and a lock
    written from that copy: a test can change a "package" file without touching the real one."""
    from dataclasses import replace

    from deepproduct.training.data.transfer import write_source_lock
    from deepproduct.training.data.transfer_sources import SOURCES

    root = tmp_path / "skimage-data"
    root.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        _photo(name, 512).save(root / f"{name}.png")
    monkeypatch.setitem(SOURCES, "skimage", replace(SOURCES["skimage"], root=lambda: root))
    lock = tmp_path / "lock.json"
    doc = write_source_lock(lock, ["skimage"])
    return root, lock, doc


def test_lock_pins_every_used_file_and_a_changed_file_is_refused_with_its_effect(locked_skimage, tmp_path):
    from deepproduct.training.data.transfer_lock import TransferLockError

    root, lock, doc = locked_skimage
    files = doc["sources"]["skimage"]["files"]
    assert [f["path"] for f in files] == ["astronaut.png", "chelsea.png", "coffee.png"]
    coffee = next(f for f in files if f["path"] == "coffee.png")
    total = doc["sources"]["skimage"]["products"]
    assert coffee["products"] >= 1 and total > coffee["products"]
    SourceSet.resolve(["skimage"], lock_path=lock)  # unchanged: accepted

    _photo("coffee", 500).save(root / "coffee.png")  # another version of one file
    with pytest.raises(TransferLockError) as err:
        SourceSet.resolve(["skimage"], lock_path=lock, n_products=300)
    msg = str(err.value)
    assert "\n" not in msg and str(lock) in msg and "skimage coffee.png: sha256" in msg
    assert f"{coffee['products']} fewer candidate products ({total - coffee['products']} of {total})" in msg
    assert f"{total - coffee['products']} products instead of {total}" in msg and "--allow-missing-sources" in msg

    (root / "coffee.png").unlink()  # a missing file, through the CLI: refused, one line, exit status 1
    result = CliRunner().invoke(dp_data, ["transfer", "--out", str(tmp_path / "o"), "--sources", "skimage",
                                          "--lock", str(lock), "--image-size", "64", "--products", "4"])
    assert result.exit_code == 1 and "skimage coffee.png: missing" in result.output
    assert not (tmp_path / "o" / "manifest.csv").exists()
    result = CliRunner().invoke(dp_data, ["transfer-lock", "--check", "--lock", str(lock), "--sources", "skimage"])
    assert result.exit_code == 1 and "coffee.png: missing" in result.output

    # --allow-missing-sources builds the smaller set and says so in transfer.json.
    result = CliRunner().invoke(dp_data, ["transfer", "--out", str(tmp_path / "o"), "--sources", "skimage",
                                          "--lock", str(lock), "--image-size", "64", "--products", "4",
                                          "--allow-missing-sources"])
    assert result.exit_code == 0, result.output
    params = json.loads((tmp_path / "o" / "transfer.json").read_text())
    assert params["missing_locked_files"] == [{"source": "skimage", "file": "coffee.png", "reason": "missing",
                                               "products": coffee["products"]}]
    assert "coffee" not in (tmp_path / "o" / "manifest.csv").read_text()


def test_manifest_digest_is_recorded_printed_and_the_same_when_generated_twice(locked_skimage, tmp_path):
    from deepproduct.training.data.transfer import manifest_digest

    _, lock, _ = locked_skimage
    digests = []
    for name in ("a", "b"):
        result = CliRunner().invoke(dp_data, ["transfer", "--out", str(tmp_path / name), "--sources", "skimage",
                                              "--lock", str(lock), "--image-size", "64", "--products", "5"])
        assert result.exit_code == 0, result.output
        recorded = json.loads((tmp_path / name / "transfer.json").read_text())["manifest_sha256"]
        assert recorded == manifest_digest(tmp_path / name / "manifest.csv") and f"digest: {recorded}" in result.output
        digests.append(recorded)
    assert digests[0] == digests[1]
    (tmp_path / "b" / "images").joinpath(read_dataset_manifest(tmp_path / "b" / "manifest.csv").rows[0].path
                                         .removeprefix("images/")).write_bytes(b"x")
    assert manifest_digest(tmp_path / "b" / "manifest.csv") != digests[0]  # the digest covers the images


def test_print_screen_style_shares_products_and_shop_images(source_dir, tmp_path):
    src = _sources(source_dir)
    a = generate_transfer_dataset(tmp_path / "phone", 4, seed=0, sources=src, image_size=96)
    b = generate_transfer_dataset(tmp_path / "print", 4, seed=0, sources=src, image_size=96, style="print-screen")
    ma, mb = read_dataset_manifest(a), read_dataset_manifest(b)
    assert ma.products() == mb.products()
    for ra, rb in zip(ma.rows, mb.rows, strict=True):
        same = Path(ma.abspath(ra)).read_bytes() == Path(mb.abspath(rb)).read_bytes()
        assert same == (ra.domain == "shop")  # the same catalogue, other queries
    with Image.open(mb.abspath(mb.select("test", "user")[0])) as q:
        assert q.size == (96, 128)
    assert json.loads((tmp_path / "print" / "transfer.json").read_text())["style"] == "print-screen"
    with pytest.raises(ValueError, match="unknown transfer style"):
        generate_transfer_dataset(tmp_path / "x", 4, sources=src, image_size=96, style="poster")
