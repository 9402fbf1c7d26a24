"""The hostile-file corpus in ``bad/``: files every reader must refuse (or, marked valid, accept).

    python tests/vectors/make_bad_vectors.py [--out DIR]     # also run by make_vectors.py

Each file is made from ``index/float32.dpindex`` / ``index/int8.dpindex`` (or a good model
manifest) by one deliberate change; where the change would only trip a checksum, both CRC-32s
are recomputed so that the reader's later checks are what must catch it. ``bad/expected.json``
is the one list of expected outcomes that the Python SDK and the Java, Swift and JavaScript
cores all test against: an error ``kind`` (the class name; ``IndexFileError`` subclasses for
indexes, ``ManifestError`` for manifests) and a ``problem`` prefix (indexes; the message
without the ``source: `` part) or what the message ``mentions`` (manifests: the failing field's
path such as ``artefacts[0].file``, or ``not valid JSON``).
"""

from __future__ import annotations

import argparse
import copy
import json
import struct
from pathlib import Path

from deepproduct.sdk.index_format import HEADER_SIZE, TRAILER_SIZE, crc32_update

SECTION_TABLE = 40
SECTIONS = ("space_id", "scales", "id_offsets", "id_bytes", "vectors", "metadata")

#: A model manifest that passes manifest.schema.json; every bad manifest is one change to it.
GOOD_MANIFEST: dict = {
    "format": "deepproduct-model-manifest",
    "manifest_version": 1,
    "model": {"name": "vectors-model", "version": "1", "backbone": "tiny", "embedding_dim": 16, "input_size": 32},
    "embedding_space_id": "0" * 64,
    "input": {"name": "image", "colour_order": "RGB", "value_range": [0, 1], "size": [32, 32],
              "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "applied": "in-graph"}},
    "output": {"name": "embedding", "dim": 16, "dtype": "float32", "l2_normalised": True},
    "preprocessing": {"input_size": 32, "resize_shorter": 37, "resize_algorithm": "triangle-antialias-half-pixel-v1",
                      "crop": "centre", "colour_order": "RGB", "value_range": [0.0, 1.0],
                      "alpha_background": [255, 255, 255], "max_pixels": 50000000, "version": 1, "extra": {}},
    "artefacts": [{"file": "model.onnx", "format": "onnx", "precision": "fp32", "layout": "NCHW",
                   "input_name": "image", "output_name": "embedding", "sha256": "1" * 64, "size_bytes": 1,
                   "parity": []}],
    "parity": {"images": 1, "reference": "pytorch", "passed": True},
    "tools": {"python": "3.11"},
    "files": [{"path": "model.onnx", "sha256": "1" * 64, "size_bytes": 1}],
}


def _fix_crcs(raw: bytearray) -> bytes:
    struct.pack_into("<I", raw, HEADER_SIZE - 4, crc32_update(0, bytes(raw[:HEADER_SIZE - 4])))
    body = len(raw) - TRAILER_SIZE
    struct.pack_into("<I", raw, body, crc32_update(0, bytes(raw[:body])))
    return bytes(raw)


def _section(raw: bytes | bytearray, name: str) -> tuple[int, int]:
    return struct.unpack_from("<QQ", raw, SECTION_TABLE + 16 * SECTIONS.index(name))


def _set_section(raw: bytearray, name: str, offset: int, length: int) -> None:
    struct.pack_into("<QQ", raw, SECTION_TABLE + 16 * SECTIONS.index(name), offset, length)


def _with_metadata(good: bytes, metadata: bytes) -> bytes:
    """``good`` with its metadata section replaced (the file grows; sizes and CRCs fixed)."""
    off, length = _section(good, "metadata")
    body = bytearray(good[:off]) + metadata
    body += bytes(-len(body) % 8)
    raw = body + bytes(TRAILER_SIZE)
    _set_section(raw, "metadata", off, len(metadata))
    struct.pack_into("<Q", raw, 32, len(raw))
    raw[-4:] = b"DPIE"
    return _fix_crcs(raw)


#: The five damaged copies make_vectors.py writes (accidental damage), with their exact problems.
DAMAGED = {
    "truncated.dpindex": ("TruncatedIndexError",
                          "truncated: 3716 bytes on disk but the header says 7432 (an interrupted copy or download?)"),
    "version2.dpindex": ("UnsupportedVersionError", "index format version 2 is newer than this reader supports (1); "
                                                    "upgrade deepproduct or rebuild the index with this version"),
    "bad_checksum.dpindex": ("ChecksumError", "checksum mismatch (stored CRC-32 12dbcc24, computed 313f27ae): "
                                              "the file is damaged; rebuild or re-copy it"),
    "bad_header_crc.dpindex": ("ChecksumError", "header CRC-32 mismatch: the header is damaged"),
    "not_an_index.dpindex": ("IndexFileError",
                             "not a DeepProduct gallery index (magic b'\\x89PNG\\r\\n\\x1a\\n', expected b'DPINDEX\\x00')"),
}


def index_cases(float32: bytes, int8: bytes) -> dict[str, tuple[bytes, dict]]:
    """file name -> (bytes, expected outcome) of the hostile files (valid checksums)."""
    out: dict[str, tuple[bytes, dict]] = {}

    def bad(name: str, data: bytes, kind: str, problem: str) -> None:
        out[name] = (data, {"kind": kind, "problem": problem})

    raw = bytearray(float32)
    struct.pack_into("<H", raw, 22, 0)
    bad("zero_alignment.dpindex", _fix_crcs(raw), "IndexFileError", "vector alignment 0 is not 64 as format v1 requires")

    raw = bytearray(float32)
    id_off, _ = _section(raw, "id_offsets")
    id_bytes_off, _ = _section(raw, "id_bytes")
    start3 = struct.unpack_from("<I", raw, id_off + 4 * 3)[0]
    raw[id_bytes_off + start3] = 0xFF  # never valid in UTF-8
    bad("non_utf8_id.dpindex", _fix_crcs(raw), "IndexFileError", "product id 3 is not UTF-8")

    deep = b'{"index":{},"items":[' + b"{}," * 39 + b'{"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}]}"
    bad("deep_metadata.dpindex", _with_metadata(float32, deep), "IndexFileError",
        "metadata block is not valid UTF-8 JSON (")
    nan = b'{"index":{},"items":[' + b"{}," * 39 + b'{"price":NaN}]}'
    bad("nan_metadata.dpindex", _with_metadata(float32, nan), "IndexFileError",
        "metadata block is not valid UTF-8 JSON (")

    raw = bytearray(float32)
    _set_section(raw, "scales", 1 << 60, 0)  # length 0: the offset is meaningless (docs), not an error
    out["empty_section_huge_offset.dpindex"] = (_fix_crcs(raw), {"valid": True, "count": 40, "dim": 16,
                                                                  "same_results_as": "index/float32.dpindex"})

    raw = bytearray(float32)
    space_off, _ = _section(raw, "space_id")
    id_off, _ = _section(raw, "id_offsets")
    _set_section(raw, "space_id", space_off, id_off - space_off + 8)  # runs 8 bytes into id_offsets
    bad("overlapping_sections.dpindex", _fix_crcs(raw), "IndexFileError", "sections space_id and id_offsets overlap")

    raw = bytearray(float32)
    meta_off, meta_len = _section(raw, "metadata")
    _set_section(raw, "metadata", meta_off + 4, meta_len - 4)  # shifted: the JSON's first bytes dropped
    bad("shifted_section.dpindex", _fix_crcs(raw), "IndexFileError",
        f"metadata section offset {meta_off + 4} is not a multiple of 8")

    raw = bytearray(float32)
    vec_off, _ = _section(raw, "vectors")
    struct.pack_into("<f", raw, vec_off + 4 * (5 * 16 + 2), float("nan"))
    bad("nan_vector.dpindex", _fix_crcs(raw), "IndexFileError", "vector 5 contains NaN or infinity")

    raw = bytearray(float32)  # finite but 2x too long: such a row scores above 1 (1e30 gave inf)
    row = vec_off + 4 * 16 * 7
    values = struct.unpack_from("<16f", raw, row)
    struct.pack_into("<16f", raw, row, *(2.0 * v for v in values))
    bad("non_unit_vector.dpindex", _fix_crcs(raw), "IndexFileError", "vector 7 is not unit length")

    raw = bytearray(int8)
    sc_off, _ = _section(raw, "scales")
    struct.pack_into("<f", raw, sc_off, 1e38)
    bad("huge_scale.dpindex", _fix_crcs(raw), "IndexFileError", "int8 scales must be finite, positive and at most 1")
    return out


def _drop(doc: dict, *path: str | int) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


def _put(doc: dict, value, *path: str | int) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def manifest_cases() -> dict[str, tuple[str, dict]]:
    """file name -> (JSON text, expected outcome); ``mentions``: the field path readers must name."""
    g = GOOD_MANIFEST
    cases: dict[str, tuple[object, str]] = {
        "bgr.json": (_put(g, "BGR", "preprocessing", "colour_order"), "preprocessing.colour_order"),
        "input_bgr.json": (_put(g, "BGR", "input", "colour_order"), "input.colour_order"),
        "value_range_255.json": (_put(g, [0, 255], "preprocessing", "value_range"), "preprocessing.value_range"),
        "crop_none.json": (_put(g, "none", "preprocessing", "crop"), "preprocessing.crop"),
        "version0.json": (_put(g, 0, "manifest_version"), "manifest_version"),
        "version_string.json": (_put(g, "1", "manifest_version"), "manifest_version"),
        "no_resize_shorter.json": (_drop(g, "preprocessing", "resize_shorter"), "preprocessing.resize_shorter"),
        "no_sha256.json": (_drop(g, "artefacts", 0, "sha256"), "artefacts[0].sha256"),
        "empty_space_id.json": (_put(g, "", "embedding_space_id"), "embedding_space_id"),
        "path_parent.json": (_put(g, "../../evil.onnx", "artefacts", 0, "file"), "artefacts[0].file"),
        "path_absolute.json": (_put(g, "/etc/hostname", "artefacts", 0, "file"), "artefacts[0].file"),
        "files_parent.json": (_put(g, "../x", "files", 0, "path"), "files[0].path"),
        "top_level_array.json": ([g], "(top level)"),
        "zero_dim.json": (_put(g, 0, "model", "embedding_dim"), "model.embedding_dim"),
    }
    out: dict[str, tuple[str, dict]] = {}
    for name, (doc, field) in cases.items():
        out[name] = (json.dumps(doc, indent=1) + "\n", {"kind": "ManifestError", "mentions": field})
    deep = '{"format": "deepproduct-model-manifest", "manifest_version": 1, "x": ' + "[" * 20_000 + "]" * 20_000 + "}"
    out["deep_nesting.json"] = (deep + "\n", {"kind": "ManifestError", "mentions": "not valid JSON"})
    out["nan.json"] = (json.dumps(_put(g, float("nan"), "parity", "images")) + "\n",
                       {"kind": "ManifestError", "mentions": "not valid JSON"})
    out["good.json"] = (json.dumps(g, indent=1) + "\n", {"valid": True})
    return out


def write_bad_vectors(out: Path) -> dict:
    bad = out / "bad"
    (bad / "manifests").mkdir(parents=True, exist_ok=True)
    doc: dict = {"index": {}, "manifest": {}}
    index = index_cases((out / "index" / "float32.dpindex").read_bytes(), (out / "index" / "int8.dpindex").read_bytes())
    for name, (data, expected) in index.items():
        (bad / name).write_bytes(data)
        doc["index"][name] = expected
    for name, (kind, problem) in DAMAGED.items():
        doc["index"][name] = {"kind": kind, "problem": problem}
    for name, (text, expected) in manifest_cases().items():
        (bad / "manifests" / name).write_text(text, encoding="utf-8")
        doc["manifest"][f"manifests/{name}"] = expected
    (bad / "expected.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return doc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    write_bad_vectors(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
