"""The dataset manifest CSV: round trip, validation errors that name file/row/column, atomic writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deepproduct.sdk.dataset_manifest import (
    DatasetManifestError,
    DatasetRow,
    read_dataset_manifest,
    write_dataset_manifest,
)

HEADER = "path,product_id,domain,split,tags,attr_colour\n"


def _rows() -> list[DatasetRow]:
    return [
        DatasetRow("images/a/shop_0.jpg", "a", "shop", "train", {"category": "mug", "colour": "red"},
                   ("category:mug", "colour:red")),
        DatasetRow("images/a/user_0.jpg", "a", "user", "train", {"category": "mug", "colour": "red"}, ()),
        DatasetRow("images/b/shop_0.jpg", "b", "shop", "test", {"category": "can"}, ("category:can",)),
        DatasetRow("images/b/user_0.jpg", "b", "user", "test", {"category": "can"}, ()),
        DatasetRow("images/c/shop_0.jpg", "c", "shop", "test", {}, ()),
    ]


def test_round_trip(tmp_path: Path) -> None:
    csv_path = write_dataset_manifest(_rows(), tmp_path / "data" / "manifest.csv")
    text = csv_path.read_text()
    assert text.splitlines()[0] == "path,product_id,domain,split,tags,attr_category,attr_colour"
    assert "category:mug|colour:red" in text
    m = read_dataset_manifest(csv_path)
    assert m.rows == _rows()  # unknown attributes (empty cells) are left out, as written
    assert m.attribute_names == ["category", "colour"]
    assert m.root == csv_path.parent
    assert m.abspath(m.rows[0]) == csv_path.parent / "images/a/shop_0.jpg"
    assert m.has_tags
    assert [r.path for r in m.select(split="test", domain="user")] == ["images/b/user_0.jpg"]
    assert len(m.select(domain="shop")) == 3
    assert m.products() == ["a", "b", "c"]
    assert m.products("test") == ["b", "c"]
    with pytest.raises(ValueError, match="split must be one of"):
        m.select(split="val")


def test_no_tags_and_extra_whitespace(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("\ufeffpath, product_id ,domain,split,tags\n a.jpg ,a ,shop,train,\n\nb.jpg,b,user,test, x | y \n")
    m = read_dataset_manifest(p)
    assert m.rows[0] == DatasetRow("a.jpg", "a", "shop", "train", {}, ())
    assert m.rows[1].tags == ("x", "y")
    assert m.attribute_names == []
    assert read_dataset_manifest(write_dataset_manifest([m.rows[0]], tmp_path / "n.csv")).has_tags is False


@pytest.mark.parametrize(("text", "pattern"), [
    ("path,product_id,split,tags\na.jpg,a,train,\n", r"m\.csv: row 1 \(header\): missing column\(s\) 'domain'"),
    ("", r"m\.csv: empty file"),
    (HEADER + "a.jpg,a,phone,train,,red\n", r"m\.csv: row 2, column 'domain': 'phone' is not one of shop, user"),
    (HEADER + "a.jpg,a,shop,val,,red\n", r"row 2, column 'split': 'val'"),
    (HEADER + "a.jpg,a,shop,train,,red\nb.jpg, ,shop,train,,red\n", r"row 3, column 'product_id': empty product id"),
    (HEADER + ",a,shop,train,,red\n", r"row 2, column 'path': empty image path"),
    (HEADER + "a.jpg,a,shop,train,,red\na.jpg,b,shop,train,,red\n", r"row 3, column 'path'.*already listed in row 2"),
    (HEADER + "images/x.jpg,a,shop,train,,red\nimages/./x.jpg,a,user,train,,red\n",
     r"row 3, column 'path': 'images/x.jpg' is already listed in row 2"),  # one image, two spellings
    (HEADER + "images//x.jpg,a,shop,train,,red\nimages\\x.jpg,a,user,train,,red\n", r"row 3.*already listed in row 2"),
    (HEADER + "a.jpg,a,shop,train,,red\nb.jpg,a,user,test,,red\n", r"row 3, column 'split'.*disjoint"),
    (HEADER + "a.jpg,a,shop,train,red\n", r"row 2: 5 cells, the header has 6 columns"),
    ("path,product_id,domain,split,tags,colour\n", r"unknown column 'colour'"),
    ("path,product_id,domain,split,tags,tags\n", r"column 'tags' appears twice"),
])
def test_read_errors_name_file_row_and_column(tmp_path: Path, text: str, pattern: str) -> None:
    p = tmp_path / "m.csv"
    p.write_text(text)
    with pytest.raises(DatasetManifestError, match=pattern):
        read_dataset_manifest(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetManifestError, match="not found"):
        read_dataset_manifest(tmp_path / "nope.csv")


@pytest.mark.parametrize(("row", "pattern"), [
    (DatasetRow("/abs/a.jpg", "a", "shop", "train"), "is absolute"),
    (DatasetRow("dir\\a.jpg", "a", "shop", "train"), "not a POSIX path"),
    (DatasetRow("a.jpg", "a", "consumer", "train"), "column 'domain'"),
    (DatasetRow("a.jpg", "", "shop", "train"), "column 'product_id'"),
    (DatasetRow("a.jpg", "a", "shop", "train", tags=("a|b",)), "column 'tags'"),
    (DatasetRow("a.jpg", "a", "shop", "train", attributes={"bad,name": "x"}), "invalid attribute name"),
])
def test_write_validates_and_never_clobbers(tmp_path: Path, row: DatasetRow, pattern: str) -> None:
    target = write_dataset_manifest(_rows(), tmp_path / "m.csv")
    before = target.read_bytes()
    with pytest.raises(DatasetManifestError, match=pattern):
        write_dataset_manifest([*_rows(), row], target)
    assert target.read_bytes() == before  # the old manifest is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # and no temp file is left behind


def test_write_rejects_product_in_two_splits(tmp_path: Path) -> None:
    rows = [DatasetRow("a.jpg", "a", "shop", "train"), DatasetRow("b.jpg", "a", "user", "test")]
    with pytest.raises(DatasetManifestError, match="row 3, column 'split'"):
        write_dataset_manifest(rows, tmp_path / "m.csv")


def test_data_modules_do_not_import_torch() -> None:
    code = ("import sys\n"
            "import deepproduct.sdk.dataset_manifest, deepproduct.training.data.synth\n"
            "import deepproduct.training.data.adapters, deepproduct.training.data_cli\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_paths_are_normalised_on_reading_and_duplicates_refused_on_writing(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text(HEADER + "./images/./x.jpg,a,shop,train,,red\n")
    assert read_dataset_manifest(p).rows[0].path == "images/x.jpg"
    rows = [DatasetRow("images/x.jpg", "a", "shop", "train"), DatasetRow("images/./x.jpg", "a", "user", "train")]
    with pytest.raises(DatasetManifestError, match=r"row 3, column 'path'.*already listed in row 2"):
        write_dataset_manifest(rows, tmp_path / "n.csv")
