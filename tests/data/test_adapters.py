"""Real-data adapters on tiny fixtures written in the data sets' published formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from deepproduct.sdk.dataset_manifest import read_dataset_manifest
from deepproduct.training.data.adapters import (
    AdapterError,
    consumer2shop_to_manifest,
    imagefolder_to_manifest,
    inshop_to_manifest,
    pairs_to_manifest,
    sop_to_manifest,
)
from deepproduct.training.data_cli import main


def _jpg(path: Path, shade: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, 64, 200)).save(path, "JPEG")


def _by_path(csv_path: Path) -> dict:
    m = read_dataset_manifest(csv_path)
    for r in m.rows:
        assert m.abspath(r).is_file(), r.path
    return {r.path: r for r in m.rows}


# -- Stanford Online Products ----------------------------------------------------------------------

SOP_TRAIN = """image_id class_id super_class_id path
1 1 1 bicycle_final/111085122871_0.JPG
2 1 1 bicycle_final/111085122871_1.JPG
3 2 11 table_final/111265328556_0.JPG
"""
SOP_TEST = """image_id class_id super_class_id path
4 11319 1 bicycle_final/251952414262_0.JPG
5 11319 1 bicycle_final/251952414262_1.JPG
"""


def _sop(root: Path, missing: tuple[str, ...] = ()) -> Path:
    root.mkdir(parents=True)
    (root / "Ebay_train.txt").write_text(SOP_TRAIN)
    (root / "Ebay_test.txt").write_text(SOP_TEST)
    for line in (SOP_TRAIN + SOP_TEST).splitlines():
        rel = line.split()[-1]
        if rel != "path" and rel not in missing:
            _jpg(root / rel)
    return root


def test_sop(tmp_path: Path) -> None:
    root = _sop(tmp_path / "Stanford_Online_Products")
    out = sop_to_manifest(root, tmp_path / "manifests" / "sop.csv")
    rows = _by_path(out)
    assert len(rows) == 5
    first = rows["../Stanford_Online_Products/bicycle_final/111085122871_0.JPG"]
    assert (first.product_id, first.domain, first.split) == ("1", "shop", "train")
    assert first.attributes == {"super_class": "bicycle", "super_class_id": "1"}
    assert {r.domain for r in rows.values()} == {"shop"}  # one domain: leave-one-out evaluation
    m = read_dataset_manifest(out)
    assert m.products("test") == ["11319"] and m.products("train") == ["1", "2"]


def test_sop_missing_images_are_listed(tmp_path: Path) -> None:
    root = _sop(tmp_path / "sop", missing=("table_final/111265328556_0.JPG", "bicycle_final/251952414262_1.JPG"))
    with pytest.raises(AdapterError, match=r"2 of 5 listed images are missing") as err:
        sop_to_manifest(root, tmp_path / "sop.csv")
    assert "111265328556_0.JPG" in str(err.value) and "251952414262_1.JPG" in str(err.value)
    assert not (tmp_path / "sop.csv").exists()


def test_sop_bad_header(tmp_path: Path) -> None:
    root = _sop(tmp_path / "sop")
    (root / "Ebay_test.txt").write_text("image_id class_id path\n4 11319 bicycle_final/x.JPG\n")
    with pytest.raises(AdapterError, match=r"Ebay_test.txt: line 1 should be the header"):
        sop_to_manifest(root, tmp_path / "sop.csv")


# -- DeepFashion In-shop ---------------------------------------------------------------------------

INSHOP = """52712
image_name item_id evaluation_status
img/WOMEN/Dresses/id_00000002/02_1_front.jpg                   id_00000002 train
img/WOMEN/Dresses/id_00000002/02_2_side.jpg                    id_00000002 train
img/MEN/Denim/id_00000080/01_1_front.jpg                       id_00000080 query
img/MEN/Denim/id_00000080/01_2_side.jpg                        id_00000080 gallery
img/MEN/Denim/id_00000080/01_4_full.jpg                        id_00000080 gallery
img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg            id_00000001 gallery
"""


def test_inshop(tmp_path: Path) -> None:
    root = tmp_path / "In-shop Clothes Retrieval Benchmark"
    (root / "Eval").mkdir(parents=True)
    (root / "Eval" / "list_eval_partition.txt").write_text(INSHOP)
    for line in INSHOP.splitlines()[2:]:
        _jpg(root / "Img" / line.split()[0])
    rows = _by_path(inshop_to_manifest(root, root / "manifest.csv"))
    assert len(rows) == 6
    train = rows["Img/img/WOMEN/Dresses/id_00000002/02_1_front.jpg"]
    assert (train.product_id, train.split, train.domain) == ("id_00000002", "train", "shop")
    assert train.attributes == {"gender": "women", "category": "Dresses", "view": "front"}
    query = rows["Img/img/MEN/Denim/id_00000080/01_1_front.jpg"]
    assert (query.split, query.domain) == ("test", "user")
    gallery = rows["Img/img/MEN/Denim/id_00000080/01_4_full.jpg"]
    assert (gallery.split, gallery.domain) == ("test", "shop")


def test_inshop_bad_status_and_header(tmp_path: Path) -> None:
    root = tmp_path / "inshop"
    root.mkdir()
    (root / "list_eval_partition.txt").write_text(INSHOP.replace("id_00000080 query", "id_00000080 probe"))
    with pytest.raises(AdapterError, match=r"line 5: evaluation_status 'probe'"):
        inshop_to_manifest(root, root / "m.csv")
    (root / "list_eval_partition.txt").write_text("image_name item_id evaluation_status\nx.jpg id_1 train\n")
    with pytest.raises(AdapterError, match=r"line 1 should be the number of entries"):
        inshop_to_manifest(root, root / "m.csv")
    with pytest.raises(AdapterError, match="no list_eval_partition.txt found"):
        inshop_to_manifest(tmp_path, tmp_path / "m.csv")


# -- DeepFashion Consumer-to-shop ------------------------------------------------------------------

C2S = """195540
image_pair_name_1 image_pair_name_2 item_id evaluation_status
img/TOPS/Summer_Wear/id_00000001/comsumer_01.jpg img/TOPS/Summer_Wear/id_00000001/shop_01.jpg id_00000001 train
img/TOPS/Summer_Wear/id_00000001/comsumer_02.jpg img/TOPS/Summer_Wear/id_00000001/shop_01.jpg id_00000001 train
img/DRESSES/Skirt/id_00000007/comsumer_01.jpg img/DRESSES/Skirt/id_00000007/shop_01.jpg id_00000007 val
img/TROUSERS/Pants/id_00000009/comsumer_01.jpg img/TROUSERS/Pants/id_00000009/shop_01.jpg id_00000009 test
img/TROUSERS/Pants/id_00000009/comsumer_01.jpg img/TROUSERS/Pants/id_00000009/shop_02.jpg id_00000009 test
"""


def _c2s(root: Path, text: str = C2S) -> Path:
    (root / "Eval").mkdir(parents=True)
    (root / "Eval" / "list_eval_partition.txt").write_text(text)
    for line in text.splitlines()[2:]:
        a, b, _, _ = line.split()
        _jpg(root / "Img" / a)
        _jpg(root / "Img" / b)
    return root


def test_consumer2shop_default_protocol(tmp_path: Path) -> None:
    root = _c2s(tmp_path / "c2s")
    rows = _by_path(consumer2shop_to_manifest(root, tmp_path / "c2s.csv"))
    assert len(rows) == 7  # repeated images appear once; the val consumer photo is dropped
    consumer = rows["c2s/Img/img/TOPS/Summer_Wear/id_00000001/comsumer_02.jpg"]
    assert (consumer.product_id, consumer.domain, consumer.split) == ("id_00000001", "user", "train")
    assert consumer.attributes == {"group": "tops", "category": "Summer_Wear"}
    val_shop = rows["c2s/Img/img/DRESSES/Skirt/id_00000007/shop_01.jpg"]
    assert (val_shop.domain, val_shop.split) == ("shop", "test")  # gallery = shop images of val + test
    assert "c2s/Img/img/DRESSES/Skirt/id_00000007/comsumer_01.jpg" not in rows
    test_user = [r for r in rows.values() if r.split == "test" and r.domain == "user"]
    assert [r.product_id for r in test_user] == ["id_00000009"]


def test_consumer2shop_val_options_and_errors(tmp_path: Path) -> None:
    root = _c2s(tmp_path / "c2s")
    dropped = _by_path(consumer2shop_to_manifest(root, tmp_path / "a.csv", val="drop"))
    assert not any("id_00000007" in p for p in dropped)
    as_train = _by_path(consumer2shop_to_manifest(root, tmp_path / "b.csv", val="train"))
    assert as_train["c2s/Img/img/DRESSES/Skirt/id_00000007/comsumer_01.jpg"].split == "train"
    with pytest.raises(AdapterError, match="val must be one of"):
        consumer2shop_to_manifest(root, tmp_path / "c.csv", val="skip")
    swapped = C2S + ("img/TOPS/Summer_Wear/id_00000001/shop_01.jpg img/TOPS/Summer_Wear/id_00000001/shop_09.jpg "
                     "id_00000001 train\n")
    root2 = _c2s(tmp_path / "c2s2", swapped)
    with pytest.raises(AdapterError, match=r"line 8: .*shop_01.jpg is listed as user .* but as shop"):
        consumer2shop_to_manifest(root2, tmp_path / "d.csv")


# -- pair lists ------------------------------------------------------------------------------------

def test_pairs_json_with_split_and_template(tmp_path: Path) -> None:
    images = tmp_path / "photos"
    for name in ("101", "102", "201", "202", "203"):
        _jpg(images / f"{name}.jpg")
    pairs = [{"photo": 101, "shop": 201, "product": 7, "split": "train"},
             {"photo": 102, "shop": 202, "product": 8, "split": "test"},
             {"photo": None, "shop": 203, "product": 8, "split": "test"},
             {"photo": 101, "shop": 201, "product": 7, "split": "train"}]
    (tmp_path / "pairs.json").write_text(json.dumps({"pairs": pairs}))
    rows = _by_path(pairs_to_manifest(tmp_path / "pairs.json", images, tmp_path / "m.csv", template="{}.jpg"))
    assert len(rows) == 5
    assert (rows["photos/101.jpg"].domain, rows["photos/101.jpg"].product_id, rows["photos/101.jpg"].split) == \
        ("user", "7", "train")
    assert (rows["photos/203.jpg"].domain, rows["photos/203.jpg"].split) == ("shop", "test")


def test_pairs_csv_split_by_seed(tmp_path: Path) -> None:
    images = tmp_path / "img"
    lines = ["street,shop,product_id"]
    for p in range(10):
        _jpg(images / f"street/{p}.jpg")
        _jpg(images / f"shop/{p}.jpg")
        lines.append(f"street/{p}.jpg,shop/{p}.jpg,sku-{p}")
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n")
    a = read_dataset_manifest(pairs_to_manifest(tmp_path / "pairs.csv", images, tmp_path / "a.csv",
                                                test_fraction=0.3, seed=1))
    b = read_dataset_manifest(pairs_to_manifest(tmp_path / "pairs.csv", images, tmp_path / "b.csv",
                                                test_fraction=0.3, seed=1))
    assert a.rows == b.rows
    assert len(a.products("test")) == 3 and not set(a.products("test")) & set(a.products("train"))
    for pid in a.products():  # each product keeps its street photo and its shop image together
        assert {r.domain for r in a.rows if r.product_id == pid} == {"user", "shop"}


@pytest.mark.parametrize("name, text, error", [
    ("p.csv", "street,shop,product_id,split\na.jpg,b.jpg,1,train\n", r"(?s)1 of 2 listed images are missing.*b\.jpg"),
    ("p.csv", "street,shop,sku\na.jpg,a.jpg,1\n", "missing the product id field"),
    ("p.csv", "street,shop,product_id\na.jpg,,1\nc.jpg,a.jpg,2\n",
     r"line 3: a.jpg is the shop image of product 2 here but the user image"),
    ("p.csv", "street,shop,product_id,split\na.jpg,,1,val\n", r"line 2: split 'val'"),
    ("p.txt", "a.jpg a.jpg 1\n", "unsupported pair list format"),
], ids=["missing-image", "no-product-id", "shop-image-also-user", "bad-split", "unknown-format"])
def test_pairs_errors(tmp_path: Path, name: str, text: str, error: str) -> None:
    images = tmp_path / "img"
    _jpg(images / "a.jpg")
    (tmp_path / name).write_text(text)
    with pytest.raises(AdapterError, match=error):
        pairs_to_manifest(tmp_path / name, images, tmp_path / "m.csv")


# -- ImageFolder by product ------------------------------------------------------------------------

def test_imagefolder(tmp_path: Path) -> None:
    root = tmp_path / "catalogue"
    for p in range(6):
        _jpg(root / f"prod{p}" / "front.jpg")
    _jpg(root / "prod0" / "shop" / "studio.png")
    _jpg(root / "prod0" / "user" / "IMG_0001.JPG")
    (root / "prod1" / "notes.txt").write_text("not an image")
    out = imagefolder_to_manifest(root, root / "manifest.csv", test_fraction=0.5, seed=3)
    rows = _by_path(out)
    assert len(rows) == 8
    assert rows["prod0/user/IMG_0001.JPG"].domain == "user"
    assert rows["prod0/shop/studio.png"].domain == "shop" and rows["prod3/front.jpg"].domain == "shop"
    m = read_dataset_manifest(out)
    assert len(m.products("test")) == 3 and not set(m.products("test")) & set(m.products("train"))
    again = read_dataset_manifest(imagefolder_to_manifest(root, tmp_path / "again.csv", test_fraction=0.5, seed=3))
    assert again.products("test") == m.products("test")


def test_imagefolder_errors(tmp_path: Path) -> None:
    root = tmp_path / "r"
    _jpg(root / "train" / "prod0" / "a.jpg")
    with pytest.raises(AdapterError, match=r"r/train/prod0: unexpected folder"):
        imagefolder_to_manifest(root, tmp_path / "m.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AdapterError, match="no images found"):
        imagefolder_to_manifest(empty, tmp_path / "m.csv")
    one = tmp_path / "one"
    _jpg(one / "p" / "a.jpg")
    with pytest.raises(AdapterError, match="need at least 2 products"):
        imagefolder_to_manifest(one, tmp_path / "m.csv")


# -- the CLI ---------------------------------------------------------------------------------------

def test_cli_adapters(tmp_path: Path) -> None:
    runner = CliRunner()
    root = _sop(tmp_path / "sop")
    ok = runner.invoke(main, ["sop", str(root), "--out", str(tmp_path / "sop.csv")])
    assert ok.exit_code == 0, ok.output
    assert "5 images of 3 products (2 train, 1 test)" in ok.output
    (root / "bicycle_final" / "111085122871_1.JPG").unlink()
    bad = runner.invoke(main, ["sop", str(root), "--out", str(tmp_path / "sop2.csv")])
    assert bad.exit_code == 1 and "111085122871_1.JPG" in bad.output
    folder = tmp_path / "folder"
    for p in range(3):
        _jpg(folder / f"p{p}" / "a.jpg")
    res = runner.invoke(main, ["imagefolder", str(folder), "--out", str(tmp_path / "f.csv"), "--test-fraction",
                               "0.34"])
    assert res.exit_code == 0, res.output
    stats = runner.invoke(main, ["stats", str(tmp_path / "f.csv")])
    assert stats.exit_code == 0 and "3 products" in stats.output
