"""The embedded synthetic benchmark: determinism, splits, per-product image counts, attributes."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deepproduct.sdk.dataset_manifest import DatasetManifest, read_dataset_manifest
from deepproduct.training.data.synth import generate_synthetic_dataset
from deepproduct.training.data.synth_catalog import CATEGORIES, MUTABLE, make_catalogue
from deepproduct.training.data_cli import main

SIZE = 96
N_PRODUCTS, N_DISTRACTORS = 12, 5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> DatasetManifest:
    out = tmp_path_factory.mktemp("synth") / "a"
    path = generate_synthetic_dataset(out, n_products=N_PRODUCTS, seed=7, test_fraction=0.3,
                                      n_distractors=N_DISTRACTORS, image_size=SIZE, workers=1)
    return read_dataset_manifest(path)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow  # generates the data set three times
def test_bit_identical_for_a_seed_whatever_the_worker_count(tiny: DatasetManifest, tmp_path: Path) -> None:
    generate_synthetic_dataset(tmp_path / "b", n_products=N_PRODUCTS, seed=7, test_fraction=0.3,
                               n_distractors=N_DISTRACTORS, image_size=SIZE, workers=2)
    assert _tree(tiny.root) == _tree(tmp_path / "b")


def test_another_seed_gives_another_data_set(tiny: DatasetManifest, tmp_path: Path) -> None:
    path = generate_synthetic_dataset(tmp_path / "c", n_products=N_PRODUCTS, seed=8, n_distractors=N_DISTRACTORS,
                                      image_size=SIZE, workers=1)
    assert path.read_bytes() != tiny.csv_path.read_bytes()


def test_splits_are_disjoint_and_sized(tiny: DatasetManifest) -> None:
    train, test = set(tiny.products("train")), set(tiny.products("test"))
    assert not train & test
    with_photos = {r.product_id for r in tiny.select(domain="user")}
    assert len(with_photos) == N_PRODUCTS
    assert len(test - with_photos) == N_DISTRACTORS
    assert len(test & with_photos) == round(0.3 * N_PRODUCTS)


def test_images_per_product_and_domain(tiny: DatasetManifest) -> None:
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in tiny.rows:
        counts[r.product_id][r.domain] += 1
    distractors = 0
    for pid, c in counts.items():
        assert 1 <= c["shop"] <= 2, pid
        if c["user"] == 0:
            distractors += 1
            assert pid in tiny.products("test")  # distractors join the test gallery
        else:
            assert 2 <= c["user"] <= 4, pid
    assert distractors == N_DISTRACTORS


def test_images_exist_and_have_the_documented_sizes(tiny: DatasetManifest) -> None:
    for r in tiny.rows:
        with Image.open(tiny.abspath(r)) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert img.size == ((SIZE, SIZE) if r.domain == "shop" else (SIZE, SIZE * 4 // 3))


def test_attributes_and_tags(tiny: DatasetManifest) -> None:
    assert {"category", "colour", "colour2", "pattern", "pattern_scale", "text", "logo"} <= set(tiny.attribute_names)
    for r in tiny.rows:
        assert set(r.attributes) == set(tiny.attribute_names)  # all known
        if r.domain == "shop":
            assert f"category:{r.attributes['category']}" in r.tags
            assert f"colour:{r.attributes['colour']}" in r.tags
            assert f"pattern:{r.attributes['pattern']}" in r.tags
            assert (f"text:{r.attributes['text']}" in r.tags) == (r.attributes["text"] != "none")
        else:
            assert r.tags == ()  # phone photos carry no listing tags
    categories = {r.attributes["category"] for r in tiny.rows}
    assert len(categories) >= 8


def test_catalogue_is_fine_grained_and_unique() -> None:
    cat = make_catalogue(np.random.default_rng(0), 300, 0.3, 90)
    specs = cat.all
    assert len({s.key() for s in specs}) == len(specs) == 390
    assert len({s.product_id for s in specs}) == 390
    assert {s.category for s in specs} == set(CATEGORIES)
    assert {s.pattern for s in specs} == {"plain", "stripes", "dots", "checks", "print"}
    # Most products have a sibling of the same category and colour that differs in at most two details.
    by_family = defaultdict(list)
    for s in specs:
        by_family[(s.category, s.colour)].append(s)

    def n_diff(a, b) -> int:
        return sum(getattr(a, f) != getattr(b, f) for f in MUTABLE)

    close = sum(any(o is not s and n_diff(s, o) <= 2 for o in by_family[(s.category, s.colour)]) for s in specs)
    assert close / len(specs) > 0.8
    # Distractors are look-alikes of test products: they share a family with one.
    test_families = {(s.category, s.colour) for s in cat.test}
    assert all((d.category, d.colour) in test_families for d in cat.distractors)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        generate_synthetic_dataset(tmp_path / "x", n_products=10, test_fraction=1.0, image_size=SIZE, workers=1)
    with pytest.raises(ValueError, match="n_products"):
        generate_synthetic_dataset(tmp_path / "x", n_products=1, image_size=SIZE, workers=1)
    foreign = tmp_path / "y" / "images"
    foreign.mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not written by the synthetic generator"):
        generate_synthetic_dataset(tmp_path / "y", n_products=4, image_size=SIZE, workers=1)


def test_cli_synth_regenerates_in_place_and_stats(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["synth", "--out", str(tmp_path / "d"), "--products", "4", "--seed", "1", "--distractors", "1",
            "--image-size", "64", "--workers", "1"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "images of 5 products" in first.output
    again = runner.invoke(main, args)  # an existing generated folder is replaced, not refused
    assert again.exit_code == 0, again.output
    assert not list(tmp_path.glob("d/.images*"))
    result = runner.invoke(main, ["stats", str(tmp_path / "d" / "manifest.csv")])
    assert result.exit_code == 0, result.output
    assert "train  user" in result.output and "attr category" in result.output
    sheet = runner.invoke(main, ["preview", str(tmp_path / "d" / "manifest.csv"), "--out", str(tmp_path / "s.png"),
                                 "--split", "train", "--cell", "48"])
    assert sheet.exit_code == 0, sheet.output
    assert Image.open(tmp_path / "s.png").size[1] == 48 * 3  # the three train products
    bad = runner.invoke(main, ["synth", "--out", str(tmp_path / "e"), "--products", "1"])
    assert bad.exit_code != 0
