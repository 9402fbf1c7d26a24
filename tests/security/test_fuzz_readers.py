"""Property-based fuzzing (hypothesis) of the three readers that take untrusted files: the
``.dpindex`` reader, the model-manifest reader and the image decoder (docs/threat-model.md).

The property is the readers' promise: any input either loads into something that works
(searches return in-range positions and finite scores; a manifest has its required fields;
a decoded image is an RGB array in range) or fails with the reader's own error type --
never another exception, never a hang. Mutations start from the committed test vectors, and
header mutations recompute both CRC-32s so the checks behind the checksum get exercised.

Fixed budget: derandomized (the same examples every run, no example database), a few hundred
examples each, a few seconds in the normal test suite.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import VECTORS

from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.index_format import HEADER_SIZE, TRAILER_SIZE, IndexFileError, crc32_update
from deepproduct.sdk.model_manifest import ManifestError, load_model_manifest
from deepproduct.sdk.preprocessing import ImageDecodeError, PreprocessingSpec, decode_image, preprocess_image

BUDGET = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
INDEXES = {name: (VECTORS / "index" / f"{name}.dpindex").read_bytes() for name in ("float32", "int8", "empty")}
_spec = importlib.util.spec_from_file_location("make_bad_vectors", VECTORS / "make_bad_vectors.py")
_bad = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bad)

# ----------------------------------------------------------------------------- index reader
#: (offset, struct code) of every header field: version .. file_size, then the section table.
HEADER_FIELDS = [(8, "<H"), (10, "<H"), (12, "<I"), (16, "<I"), (20, "<B"), (21, "<B"), (22, "<H"),
                 (24, "<Q"), (32, "<Q")] + [(40 + 8 * i, "<Q") for i in range(12)]
_BOUNDARY = [0, 1, 2, 7, 8, 63, 64, 255, 256, 2**16 - 1, 2**31, 2**32 - 1, 2**53, 2**60, 2**63, 2**64 - 1]


@st.composite
def index_bytes(draw: st.DrawFn) -> tuple[bytes, bool]:
    raw = bytearray(INDEXES[draw(st.sampled_from(["float32", "int8", "float32", "int8", "empty"]))])
    kinds = ["field", *(draw(st.sampled_from(["field", "byte", "truncate", "metadata"]))
                        for _ in range(draw(st.integers(0, 2))))]
    for kind in kinds:  # always one header field, then up to two more changes of any kind
        if kind == "field" and len(raw) >= HEADER_SIZE:
            offset, code = draw(st.sampled_from(HEADER_FIELDS))
            size = struct.calcsize(code)
            old = struct.unpack_from(code, raw, offset)[0]
            value = draw(st.one_of(st.just(0), st.just(0), st.sampled_from([old - 1, old + 1, old + 8, 2 * old]),
                                   st.sampled_from(_BOUNDARY), st.integers(old - 70, old + 70)))
            struct.pack_into(code, raw, offset, value % (1 << (8 * size)))
        elif kind == "byte" and raw:
            pos = draw(st.integers(0, len(raw) - 1))
            raw[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[draw(st.integers(0, len(raw))):]
        elif kind == "metadata":  # put hostile JSON where the metadata block starts
            off = struct.unpack_from("<Q", raw, 120)[0] if len(raw) >= 136 else 0
            junk = draw(st.sampled_from([b"NaN", b"[[[[[[[[", b"\xff\xfe", b'{"items":1}', b"Infinity", b"1e999"]))
            if HEADER_SIZE <= off < len(raw) - len(junk):
                raw[off:off + len(junk)] = junk
    fix = draw(st.booleans()) or draw(st.booleans())  # mostly: let the checks behind the CRC see it
    if fix and len(raw) >= HEADER_SIZE + TRAILER_SIZE:
        struct.pack_into("<I", raw, HEADER_SIZE - 4, crc32_update(0, bytes(raw[:HEADER_SIZE - 4])))
        struct.pack_into("<I", raw, len(raw) - TRAILER_SIZE, crc32_update(0, bytes(raw[:-TRAILER_SIZE])))
    return bytes(raw), draw(st.booleans())


def _check_usable(index: GalleryIndex, rng: np.random.Generator) -> None:
    n = len(index)
    ids, items, info = index.product_ids, index.metadata, index.info
    assert len(ids) == n and len(items) == n and isinstance(info, dict)
    assert all(isinstance(i, str) for i in ids) and all(isinstance(m, dict) for m in items)
    json.dumps(items, allow_nan=False)  # query --json must print valid JSON
    q = rng.normal(size=(2, index.dim)).astype(np.float32)
    for k in (1, 7, n + 3):
        scores, positions = index.search_arrays(q, k=k)
        assert positions.shape == scores.shape and positions.shape[1] <= min(k, n)
        assert ((positions >= 0) & (positions < n)).all() and np.isfinite(scores).all()
    hits = index.search(q[0], k=5, filter={"category": "mug"})
    assert all(items[h.position].get("category") == "mug" for h in hits)


@settings(BUDGET, max_examples=500)
@given(index_bytes())
def test_fuzz_index_reader(case):
    data, verify = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.dpindex"
        path.write_bytes(data)
        try:
            index = GalleryIndex.load(path, verify=verify)
        except IndexFileError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
            return
        if not verify:  # verify=False skips the whole-file CRC and the per-value vector scan only
            try:
                GalleryIndex.load(path, verify=True)
            except IndexFileError:
                return
        _check_usable(index, np.random.default_rng(0))


# ----------------------------------------------------------------------------- manifest reader
_json = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                     | st.text(max_size=12), lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@st.composite
def manifest_text(draw: st.DrawFn) -> str:
    doc = copy.deepcopy(_bad.GOOD_MANIFEST)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        where = draw(st.sampled_from(paths))
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "path"]))
        if action == "delete":
            del parent[where[-1]]
        elif action == "path":
            parent[where[-1]] = draw(st.sampled_from(["../x.onnx", "/etc/passwd", "a/../../b", "", ".", "C:\\x",
                                                      "model.onnx", "a//b", "\x00"]))
        else:
            parent[where[-1]] = draw(_json)
    text = json.dumps(doc)
    if draw(st.integers(0, 4)) == 0:  # and sometimes damage the text itself
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.sampled_from(["[" * 5000, "NaN", "}", "\ud800", "\x00", ""])) + text[pos:]
    return text


def _read_or_one_line_error(text: str, name: str, reader, error: type[Exception]):
    """``reader(file holding text)``, or None after checking that it failed with ``error``, one
    line naming the file (any other exception fails the test)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return reader(path)
        except error as exc:
            assert str(exc).startswith(f"{path}") and "\n" not in str(exc).strip(), str(exc)
            return None


@BUDGET
@given(manifest_text())
def test_fuzz_manifest_reader(text):
    m = _read_or_one_line_error(text, "manifest.json", load_model_manifest, ManifestError)
    if m is None:
        return
    assert isinstance(m.embedding_dim, int) and m.embedding_dim >= 1 and len(m.embedding_space_id) == 64
    assert m.preprocessing.resize_shorter >= m.preprocessing.input_size >= 1
    for a in m.artefacts:
        assert not a.file.startswith("/") and ".." not in a.file.split("/") and a.sha256
        m.artefact_path(a)


# ----------------------------------------------------------------------------- image decoder
IMAGES = {p.name: p.read_bytes() for p in sorted((VECTORS / "images").iterdir()) if p.suffix in (".png", ".jpg")}
SPEC = PreprocessingSpec.for_input_size(32)


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    raw = bytearray(IMAGES[draw(st.sampled_from(sorted(IMAGES)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["byte", "byte", "truncate", "insert", "dims"]))
        if kind == "byte" and raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[draw(st.integers(0, len(raw))):]
        elif kind == "insert":
            pos = draw(st.integers(0, len(raw)))
            raw[pos:pos] = draw(st.binary(max_size=16))
        elif len(raw) > 24:  # PNG IHDR width/height / JPEG SOF region: huge or zero sizes
            raw[16:24] = draw(st.sampled_from([bytes(8), b"\xff" * 8, b"\x00\x01\x00\x00\x00\x01\x00\x00"]))
        if not raw:
            break
    return bytes(raw)


@BUDGET
@given(image_bytes())
def test_fuzz_image_decoder(data):
    try:
        rgb = decode_image(data, max_pixels=4_000_000)
    except ImageDecodeError as exc:
        assert "\n" not in str(exc)
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and min(rgb.shape[:2]) >= 1
    if rgb.dtype != np.uint8:
        assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    x = preprocess_image(data, SPEC, "NCHW")
    assert x.shape == (1, 3, 32, 32) and np.isfinite(x).all()


# ----------------------------------------------------------------------------- dataset manifest CSV
_cells = st.sampled_from(["", "a.png", "p1", "shop", "user", "train", "test", "x;y", '"q"', "a\nb", "\x00",
                          "=HYPERLINK(\"http://x\")", "../../etc/passwd", "/abs.png", "é", "\ufeff", "z" * 140_000])
_headers = st.sampled_from(["path,product_id,domain,split,tags", "path,product_id,domain,split,tags,attr_colour",
                            "path,product_id", "", "\ufeffpath,product_id,domain,split,tags", "a,b,c,d,e"])


@settings(BUDGET, max_examples=200)
@given(_headers, st.lists(st.lists(_cells, min_size=0, max_size=7), max_size=6),
       st.sampled_from([",", ";", "\t"]))
def test_fuzz_dataset_manifest_reader(header, rows, sep):
    """Any CSV: a manifest, or one ``DatasetManifestError`` line naming the file; never another exception."""
    from deepproduct.sdk.dataset_manifest import DatasetManifestError, read_dataset_manifest

    text = header + "\n" + "\n".join(sep.join(r) for r in rows) + "\n"
    m = _read_or_one_line_error(text, "m.csv", read_dataset_manifest, DatasetManifestError)
    assert m is None or all(r.product_id for r in m.rows)


# ----------------------------------------------------------------------------- training config
_yaml_values = st.sampled_from(["1", "true", "null", "-1", "1e400", ".nan", "[1, 2", "{a: 1}", "&a [1]", "*a",
                                "'x'", "[[[[[[[[[[[[1]]]]]]]]]]]]", "!!python/object:os.system x", "0x10", "~"])
_keys = st.sampled_from(["optim.epochs", "optim.lr", "model.pretrained", "model.embedding_dim", "data.image_size",
                         "losses.0.name", "seed", "name", "model.options.x", "nope.key", "optim", "losses.9.name"])


@settings(BUDGET, max_examples=200)
@given(st.lists(st.tuples(_keys, _yaml_values), max_size=4), st.sampled_from(["", "optim: {lr: 0.1}\n",
                                                                              "a: &x [1]\nb: *x\n", "- 1\n", ": :\n"]))
def test_fuzz_training_config(overrides, file_text):
    """Any YAML file and overrides: a config, or one ``ConfigError``; never a traceback's exception."""
    from deepproduct.training.config import ConfigError, load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(file_text, encoding="utf-8")
        try:
            load_config(path, [f"{k}={v}" for k, v in overrides])
        except ConfigError as exc:
            assert "\n" not in str(exc).strip(), str(exc)
