"""The dataset manifest: one CSV that says which image shows which product, in which domain and split.

Every data source (the embedded synthetic benchmark, Stanford Online Products, DeepFashion, pair
lists, a plain folder per product) is turned into this one format, so training, evaluation and the
SDK's index builder only ever read one thing. The format is documented in ``docs/dataset-manifest.md``
(column set v1)::

    path,product_id,domain,split,tags,attr_category,attr_colour,...
    images/p00001/shop_0.jpg,p00001,shop,train,category:mug|colour:red,mug,red
    images/p00001/user_0.jpg,p00001,user,train,,mug,red

* ``path``: the image, a POSIX path relative to the CSV's own folder (so a data set can be moved or
  copied as a whole). Absolute paths are tolerated on reading; the writers never produce them.
* ``product_id``: the identity that retrieval must find; never empty.
* ``domain``: ``shop`` (catalogue / studio image) or ``user`` (consumer phone photo).
* ``split``: ``train`` or ``test``. A product lives in exactly one split (train and test products
  are disjoint; docs/method.md section 5), which the reader checks.
* ``tags``: catalogue tags joined with ``|`` (may be empty, e.g. on phone photos, which carry none).
* ``attr_<name>``: one column per product attribute; an empty cell means *unknown*, and unknown
  attributes are left out of :attr:`DatasetRow.attributes` (so two unknowns never count as a match).

This module is part of the SDK, so it uses the standard library only (never torch).
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .fileio import atomic_path

REQUIRED_COLUMNS = ("path", "product_id", "domain", "split", "tags")
ATTRIBUTE_PREFIX = "attr_"
TAG_SEPARATOR = "|"
DOMAINS = ("shop", "user")
SPLITS = ("train", "test")
FORMAT_VERSION = 1  # the column set above; documented in docs/dataset-manifest.md


class DatasetManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the row and the column."""


@dataclass(frozen=True)
class DatasetRow:
    """One image. ``attributes`` holds only known values (empty CSV cells are left out)."""

    path: str
    product_id: str
    domain: str
    split: str
    attributes: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass
class DatasetManifest:
    """A read manifest. ``root`` is the CSV's folder, which row paths are relative to."""

    csv_path: Path
    rows: list[DatasetRow]
    attribute_names: list[str]

    @property
    def root(self) -> Path:
        return self.csv_path.parent

    @property
    def has_tags(self) -> bool:
        """True when at least one row carries a tag (the column itself is always present)."""
        return any(row.tags for row in self.rows)

    def abspath(self, row: DatasetRow) -> Path:
        return self.root / row.path

    def select(self, split: str | None = None, domain: str | None = None) -> list[DatasetRow]:
        """Rows of one split and/or domain, in file order; ``None`` means any."""
        _check_choice("split", split, SPLITS, allow_none=True)
        _check_choice("domain", domain, DOMAINS, allow_none=True)
        return [r for r in self.rows
                if (split is None or r.split == split) and (domain is None or r.domain == domain)]

    def products(self, split: str | None = None) -> list[str]:
        """Sorted unique product ids of one split (or of all)."""
        return sorted({r.product_id for r in self.select(split=split)})

    def __len__(self) -> int:
        return len(self.rows)


def _check_choice(name: str, value: str | None, choices: tuple[str, ...], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


# -- reading ---------------------------------------------------------------------------------------

def normalise_path(path: str) -> str:
    """The one spelling of a row's image path: ``images/./x.jpg`` and ``images//x.jpg`` are
    ``images/x.jpg`` (lexically, like ``posixpath.normpath``), so one image listed twice under two
    spellings is caught as a duplicate instead of being trained and indexed twice."""
    return posixpath.normpath(path)


def _csv_rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows; a ``csv.Error`` (a field over the 128 KB limit, a NUL byte) becomes a
    one-line ``DatasetManifestError`` naming the file and line instead of a traceback."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DatasetManifestError(f"{path}: line {reader.line_num}: not a readable CSV row ({exc})") from None
        yield row


def read_dataset_manifest(path: str | os.PathLike) -> DatasetManifest:
    """Read and validate a manifest CSV.

    Checked: the required columns exist (the error names the missing one), no unknown column (a
    misspelt ``attr_`` column would otherwise vanish silently), non-empty paths and product ids,
    ``domain``/``split`` values, no image listed twice (paths compared after :func:`normalise_path`),
    and each product in exactly one split.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise DatasetManifestError(f"{csv_path}: dataset manifest not found")
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetManifestError(f"{csv_path}: not UTF-8 text ({exc})") from exc
    reader = _csv_rows(csv.reader(io.StringIO(text, newline="")), csv_path)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise DatasetManifestError(f"{csv_path}: empty file, expected a header row "
                                   f"with columns {', '.join(REQUIRED_COLUMNS)}")
    header = [h.strip() for h in header]
    _check_header(csv_path, header)
    attr_columns = [(i, h[len(ATTRIBUTE_PREFIX):]) for i, h in enumerate(header) if h.startswith(ATTRIBUTE_PREFIX)]
    col = {h: i for i, h in enumerate(header)}

    rows: list[DatasetRow] = []
    seen_paths: dict[str, int] = {}
    product_split: dict[str, tuple[str, int]] = {}
    for line_no, cells in enumerate(reader, start=2):  # row numbers as a spreadsheet shows them
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DatasetManifestError(f"{csv_path}: row {line_no}: {len(cells)} cells, "
                                       f"the header has {len(header)} columns")

        def cell(name: str, cells: list[str] = cells) -> str:
            return cells[col[name]].strip()

        def fail(column: str, problem: str, line_no: int = line_no) -> DatasetManifestError:
            return DatasetManifestError(f"{csv_path}: row {line_no}, column {column!r}: {problem}")

        img = cell("path").replace("\\", "/")
        if not img:
            raise fail("path", "empty image path")
        img = normalise_path(img)
        product_id = cell("product_id")
        if not product_id:
            raise fail("product_id", "empty product id")
        domain = cell("domain")
        if domain not in DOMAINS:
            raise fail("domain", f"{domain!r} is not one of {', '.join(DOMAINS)}")
        split = cell("split")
        if split not in SPLITS:
            raise fail("split", f"{split!r} is not one of {', '.join(SPLITS)}")
        if img in seen_paths:
            raise fail("path", f"{img!r} is already listed in row {seen_paths[img]}")
        seen_paths[img] = line_no
        first = product_split.setdefault(product_id, (split, line_no))
        if first[0] != split:
            raise fail("split", f"product {product_id!r} is in split {split!r} here but in "
                                f"{first[0]!r} in row {first[1]}; train and test products must be disjoint")
        tags = tuple(t.strip() for t in cell("tags").split(TAG_SEPARATOR) if t.strip())
        attributes = {name: cells[i].strip() for i, name in attr_columns if cells[i].strip()}
        rows.append(DatasetRow(path=img, product_id=product_id, domain=domain, split=split,
                               attributes=attributes, tags=tags))
    return DatasetManifest(csv_path=csv_path, rows=rows, attribute_names=[name for _, name in attr_columns])


def _check_header(csv_path: Path, header: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DatasetManifestError(f"{csv_path}: row 1 (header): missing column(s) {', '.join(map(repr, missing))}; "
                                   f"a manifest needs {', '.join(REQUIRED_COLUMNS)} (found {', '.join(header)})")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DatasetManifestError(f"{csv_path}: row 1 (header): column {name!r} appears twice")
        seen.add(name)
        if name in REQUIRED_COLUMNS:
            continue
        if not name.startswith(ATTRIBUTE_PREFIX) or name == ATTRIBUTE_PREFIX:
            raise DatasetManifestError(
                f"{csv_path}: row 1 (header): unknown column {name!r}; besides "
                f"{', '.join(REQUIRED_COLUMNS)} only attribute columns named {ATTRIBUTE_PREFIX}<name> are allowed")


# -- writing ---------------------------------------------------------------------------------------

def write_dataset_manifest(rows: Iterable[DatasetRow], csv_path: str | os.PathLike) -> Path:
    """Validate ``rows`` and write them atomically (temp file in the same folder, then rename).

    Attribute columns are the union of the rows' attribute names, sorted; a row without a value
    gets an empty cell (unknown). Returns the CSV path.
    """
    csv_path = Path(csv_path)
    rows = list(rows)
    names = sorted({name for row in rows for name in row.attributes})
    for name in names:
        if not name or any(ch in name for ch in ",\n\r\"") or name != name.strip():
            raise DatasetManifestError(f"{csv_path}: invalid attribute name {name!r}")
    seen_paths: dict[str, int] = {}
    product_split: dict[str, tuple[str, int]] = {}
    for i, row in enumerate(rows, start=2):
        _validate_row_for_writing(csv_path, i, row)
        key = normalise_path(row.path)
        if key in seen_paths:
            raise DatasetManifestError(f"{csv_path}: row {i}, column 'path': {row.path!r} is already "
                                       f"listed in row {seen_paths[key]}")
        seen_paths[key] = i
        first = product_split.setdefault(row.product_id, (row.split, i))
        if first[0] != row.split:
            raise DatasetManifestError(f"{csv_path}: row {i}, column 'split': product {row.product_id!r} is "
                                       f"in split {row.split!r} here but in {first[0]!r} in row {first[1]}")

    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*REQUIRED_COLUMNS, *(ATTRIBUTE_PREFIX + n for n in names)])
    for row in rows:
        writer.writerow([row.path, row.product_id, row.domain, row.split, TAG_SEPARATOR.join(row.tags),
                         *(row.attributes.get(n, "") for n in names)])

    with atomic_path(csv_path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())
    return csv_path


def _validate_row_for_writing(csv_path: Path, line_no: int, row: DatasetRow) -> None:
    def fail(column: str, problem: str) -> DatasetManifestError:
        return DatasetManifestError(f"{csv_path}: row {line_no}, column {column!r}: {problem}")

    if not row.path or row.path != row.path.strip():
        raise fail("path", f"empty or padded image path {row.path!r}")
    if "\\" in row.path:
        raise fail("path", f"{row.path!r} is not a POSIX path (use '/')")
    if PurePosixPath(row.path).is_absolute():
        raise fail("path", f"{row.path!r} is absolute; paths are relative to the CSV's folder")
    if not row.product_id or row.product_id != row.product_id.strip():
        raise fail("product_id", f"empty or padded product id {row.product_id!r}")
    if row.domain not in DOMAINS:
        raise fail("domain", f"{row.domain!r} is not one of {', '.join(DOMAINS)}")
    if row.split not in SPLITS:
        raise fail("split", f"{row.split!r} is not one of {', '.join(SPLITS)}")
    for tag in row.tags:
        if not tag or TAG_SEPARATOR in tag or tag != tag.strip():
            raise fail("tags", f"tag {tag!r} is empty, padded or contains {TAG_SEPARATOR!r}")
