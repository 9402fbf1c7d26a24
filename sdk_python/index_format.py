"""The ``.dpindex`` gallery file: one little-endian binary layout every platform reads.

docs/index-format.md is the normative description; this module is its reference reader and
writer. The layout is a fixed 256-byte header holding a section table, then the sections
(embedding-space id, int8 scales, ids table, the vector block aligned to 64 bytes so it can
be memory-mapped as-is, the JSON metadata), then an 8-byte trailer with a CRC-32 over every
byte before it. CRC-32 (the zlib / PNG / ``java.util.zip.CRC32`` polynomial) was chosen over
SHA-256 because it is synchronous and a dozen lines in JavaScript (WebCrypto's digest is
async and missing outside secure contexts), built in on the JVM, in zlib on Apple platforms
and in Python, and the checksum only has to catch accidental damage, not tampering.
"""

from __future__ import annotations

import glob
import json
import os
import stat
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .fileio import atomic_path

# The strict JSON grammar (docs/json.md) lives in jsonio; MAX_JSON_DEPTH and loads_strict_json
# are re-exported here for callers that imported them from this module.
from .jsonio import MAX_JSON_DEPTH, JsonError, loads_strict_json  # noqa: F401
from .jsonio import loads as json_loads
from .locking import folder_lock, ordinary_file_mode

MAGIC = b"DPINDEX\x00"
TRAILER_MAGIC = b"DPIE"
FORMAT_VERSION = 1
HEADER_SIZE = 256
TRAILER_SIZE = 8
VECTOR_ALIGNMENT = 64
SECTION_ALIGNMENT = 8

STORAGE_CODES = {"float32": 1, "int8": 2}
STORAGE_NAMES = {v: k for k, v in STORAGE_CODES.items()}
STORAGE_DTYPES = {"float32": np.dtype("<f4"), "int8": np.dtype("i1")}
METRIC_CODES = {"cosine": 1}
METRIC_NAMES = {v: k for k, v in METRIC_CODES.items()}

#: Section names in header order; each has a (u64 offset, u64 length) pair in the header.
SECTIONS = ("space_id", "scales", "id_offsets", "id_bytes", "vectors", "metadata")
_FIXED = struct.Struct("<8sHHIIBBHQQ")  # magic .. file_size: 40 bytes
_SECTION = struct.Struct("<QQ")
_SECTION_TABLE_OFFSET = 40
_HEADER_CRC_OFFSET = HEADER_SIZE - 4
_CRC_CHUNK = 16 << 20


class IndexFileError(ValueError):
    """A ``.dpindex`` file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class TruncatedIndexError(IndexFileError):
    """The file is shorter than its header says (an interrupted copy or download)."""


class ChecksumError(IndexFileError):
    """A CRC-32 does not match: the bytes were damaged after writing."""


class UnsupportedVersionError(IndexFileError):
    """Written by a newer DeepProduct than this reader understands."""


class EmbeddingSpaceMismatchError(IndexFileError):
    """The index was built by a different model than the one querying it."""


class QueryDimensionError(IndexFileError):
    """A query vector whose length is not the index's embedding dimension."""


class Section(NamedTuple):
    """One section's place in the file: the header's (u64 offset, u64 length) pair."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class IndexHeader:
    """The decoded fixed header (docs/index-format.md, "Header")."""

    format_version: int
    dim: int
    storage: str
    metric: str
    count: int
    file_size: int
    sections: dict[str, Section]
    flags: int = 0
    vector_alignment: int = VECTOR_ALIGNMENT


@dataclass
class IndexFileContents:
    """What :func:`read_index_file` returns; ``vectors`` is a read-only memmap when mapped."""

    path: Path
    header: IndexHeader
    embedding_space_id: str
    scales: np.ndarray | None
    id_offsets: np.ndarray
    id_bytes: bytes
    vectors: np.ndarray
    metadata_bytes: bytes
    checksum_verified: bool

    def product_ids(self) -> list[str]:
        offs = self.id_offsets.tolist()
        blob = self.id_bytes
        return [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1], offs[1:], strict=True)]

    def metadata(self) -> dict[str, Any]:
        return parse_metadata(self.metadata_bytes, self.header.count, self.path)


def crc32_update(crc: int, data: bytes | memoryview | np.ndarray) -> int:
    """zlib's CRC-32 (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF)."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def encode_ids(product_ids: Sequence[str]) -> tuple[np.ndarray, bytes]:
    """UTF-8 ids table: u32 offsets (count + 1 entries) into one concatenated byte string."""
    encoded = [str(p).encode("utf-8") for p in product_ids]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**32:
        raise ValueError("product ids take more than 4 GiB of UTF-8; not representable in format v1")
    return offsets.astype("<u4"), b"".join(encoded)


def encode_metadata(items: Sequence[dict[str, Any]], info: dict[str, Any] | None) -> bytes:
    """Compact UTF-8 JSON ``{"index": info, "items": [...]}``; NaN/Infinity are refused."""
    doc = {"index": info or {}, "items": list(items)}
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def parse_metadata(raw: bytes, count: int, path: Path | str | None = None) -> dict[str, Any]:
    try:
        doc = json_loads(bytes(raw))
    except JsonError as exc:
        raise IndexFileError(path, f"metadata block is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise IndexFileError(path, "metadata block must be a JSON object with an 'items' array")
    if len(doc["items"]) != count:
        raise IndexFileError(path, f"metadata has {len(doc['items'])} items but the header says {count}")
    if not all(isinstance(item, dict) for item in doc["items"]):
        raise IndexFileError(path, "every metadata item must be a JSON object")
    if not isinstance(doc.get("index"), dict):  # null or a scalar: no index info (as the JS, JVM and Swift cores read it)
        doc["index"] = {}
    return doc


def plan_layout(dim: int, count: int, storage: str, space_id: bytes, id_bytes_len: int,
                metadata_len: int) -> tuple[dict[str, Section], int]:
    """Section offsets of a v1 file as this writer lays them out (readers use the header)."""
    itemsize = STORAGE_DTYPES[storage].itemsize
    lengths = {
        "space_id": len(space_id),
        "scales": 4 * dim if storage == "int8" else 0,
        "id_offsets": 4 * (count + 1),
        "id_bytes": id_bytes_len,
        "vectors": count * dim * itemsize,
        "metadata": metadata_len,
    }
    sections: dict[str, Section] = {}
    pos = HEADER_SIZE
    for name in SECTIONS:
        pos = _align(pos, VECTOR_ALIGNMENT if name == "vectors" else SECTION_ALIGNMENT)
        sections[name] = Section(pos, lengths[name])
        pos += lengths[name]
    file_size = _align(pos, SECTION_ALIGNMENT) + TRAILER_SIZE
    return sections, file_size


def pack_header(header: IndexHeader) -> bytes:
    buf = bytearray(HEADER_SIZE)
    _FIXED.pack_into(buf, 0, MAGIC, header.format_version, HEADER_SIZE, header.flags, header.dim,
                     STORAGE_CODES[header.storage], METRIC_CODES[header.metric], header.vector_alignment,
                     header.count, header.file_size)
    for i, name in enumerate(SECTIONS):
        s = header.sections[name]
        _SECTION.pack_into(buf, _SECTION_TABLE_OFFSET + 16 * i, s.offset, s.length)
    struct.pack_into("<I", buf, _HEADER_CRC_OFFSET, crc32_update(0, bytes(buf[:_HEADER_CRC_OFFSET])))
    return bytes(buf)


def unpack_header(raw: bytes, path: Path | str | None = None, actual_size: int | None = None) -> IndexHeader:
    """Decode and validate the header; every failure is an :class:`IndexFileError` naming ``path``."""
    if len(raw) < 12:
        raise TruncatedIndexError(path, f"only {len(raw)} bytes; too short to be a gallery index")
    if raw[:8] != MAGIC:
        raise IndexFileError(path, f"not a DeepProduct gallery index (magic {raw[:8]!r}, expected {MAGIC!r})")
    version, header_size = struct.unpack_from("<HH", raw, 8)
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            path, f"index format version {version} is newer than this reader supports ({FORMAT_VERSION}); "
                  "upgrade deepproduct or rebuild the index with this version")
    if version < 1:
        raise IndexFileError(path, f"invalid index format version {version}")
    if header_size != HEADER_SIZE:
        raise IndexFileError(path, f"header size {header_size} is not {HEADER_SIZE} as format v1 requires")
    if len(raw) < HEADER_SIZE:
        raise TruncatedIndexError(path, f"file ends inside the {HEADER_SIZE}-byte header ({len(raw)} bytes)")
    (stored_crc,) = struct.unpack_from("<I", raw, _HEADER_CRC_OFFSET)
    if crc32_update(0, raw[:_HEADER_CRC_OFFSET]) != stored_crc:
        raise ChecksumError(path, "header CRC-32 mismatch: the header is damaged")
    (_, _, _, flags, dim, storage_code, metric_code, alignment, count, file_size) = _FIXED.unpack_from(raw, 0)
    if storage_code not in STORAGE_NAMES:
        raise IndexFileError(path, f"unknown storage code {storage_code}")
    if metric_code not in METRIC_NAMES:
        raise IndexFileError(path, f"unknown metric code {metric_code}")
    if dim < 1:
        raise IndexFileError(path, f"invalid embedding dimension {dim}")
    if alignment != VECTOR_ALIGNMENT:
        raise IndexFileError(path, f"vector alignment {alignment} is not {VECTOR_ALIGNMENT} as format v1 requires")
    sections = {}
    for i, name in enumerate(SECTIONS):
        off, length = _SECTION.unpack_from(raw, _SECTION_TABLE_OFFSET + 16 * i)
        sections[name] = Section(off, length)
    header = IndexHeader(format_version=version, dim=dim, storage=STORAGE_NAMES[storage_code],
                         metric=METRIC_NAMES[metric_code], count=count, file_size=file_size,
                         sections=sections, flags=flags, vector_alignment=alignment)
    if actual_size is not None and actual_size < file_size:
        raise TruncatedIndexError(
            path, f"truncated: {actual_size} bytes on disk but the header says {file_size} "
                  "(an interrupted copy or download?)")
    if actual_size is not None and actual_size > file_size:
        raise IndexFileError(path, f"{actual_size - file_size} unexpected bytes after the end of the index")
    _check_sections(header, path)
    return header


def _check_sections(h: IndexHeader, path: Path | str | None) -> None:
    itemsize = STORAGE_DTYPES[h.storage].itemsize
    expected = {"scales": 4 * h.dim if h.storage == "int8" else 0, "id_offsets": 4 * (h.count + 1),
                "vectors": h.count * h.dim * itemsize}
    for name, length in expected.items():
        if h.sections[name].length != length:
            raise IndexFileError(path, f"{name} section is {h.sections[name].length} bytes, expected {length}")
    limit = h.file_size - TRAILER_SIZE
    for name, s in h.sections.items():
        if s.length and (s.offset < HEADER_SIZE or s.end > limit):
            raise IndexFileError(path, f"{name} section [{s.offset}, {s.end}) lies outside the file body")
    if h.count and h.sections["vectors"].offset % h.vector_alignment:
        raise IndexFileError(path, "vector block is not aligned as the header states")
    used = sorted((s.offset, s.end, name) for name, s in h.sections.items() if s.length)
    for offset, _, name in used:
        if offset % SECTION_ALIGNMENT:
            raise IndexFileError(path, f"{name} section offset {offset} is not a multiple of {SECTION_ALIGNMENT}")
    for (_, end_a, a), (off_b, _, b) in zip(used, used[1:], strict=False):
        if off_b < end_a:
            raise IndexFileError(path, f"sections {a} and {b} overlap")


def write_index_file(path: str | os.PathLike, *, vectors: np.ndarray, product_ids: Sequence[str],
                     items: Sequence[dict[str, Any]], embedding_space_id: str, storage: str,
                     scales: np.ndarray | None = None, metric: str = "cosine",
                     info: dict[str, Any] | None = None) -> IndexHeader:
    """Write atomically (``fileio.atomic_path``, durable): a temp file in the target's folder, fsync, then ``os.replace``.

    Whatever happens before the rename (an exception, Ctrl-C, a crash), the previous file at
    ``path`` is untouched; the temp file is removed on failure.
    """
    path = Path(path)
    if storage not in STORAGE_CODES:
        raise ValueError(f"unknown storage {storage!r}; expected float32 or int8")
    dtype = STORAGE_DTYPES[storage]
    if vectors.ndim != 2:
        raise ValueError("vectors must be a 2-D array")
    count, dim = vectors.shape
    if len(product_ids) != count or len(items) != count:
        raise ValueError(f"{count} vectors but {len(product_ids)} ids and {len(items)} metadata items")
    if storage == "int8":
        if scales is None or np.shape(scales) != (dim,):
            raise ValueError("int8 storage needs one float32 scale per dimension")
        scales_bytes = np.ascontiguousarray(scales, dtype="<f4").tobytes()
    else:
        scales_bytes = b""
    space = embedding_space_id.encode("utf-8")
    id_offsets, id_bytes = encode_ids(product_ids)
    meta = encode_metadata(items, info)
    sections, file_size = plan_layout(dim, count, storage, space, len(id_bytes), len(meta))
    header = IndexHeader(FORMAT_VERSION, dim, storage, metric, count, file_size, sections)
    payloads: dict[str, Iterable[bytes | memoryview]] = {
        "space_id": [space], "scales": [scales_bytes], "id_offsets": [id_offsets.tobytes()],
        "id_bytes": [id_bytes], "vectors": _vector_chunks(vectors, dtype), "metadata": [meta],
    }
    if path.is_symlink():
        raise IndexFileError(path, "is a symlink; write to the file it points to (replacing the link is refused)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path.parent, path, lambda m: IndexFileError(None, m)):
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):  # a killed writer's (lock held: none live)
            if stale.is_file() and not stale.is_symlink():
                stale.unlink(missing_ok=True)
        _write_locked(path, header, payloads, sections, file_size)
    return header


def _write_locked(path: Path, header: IndexHeader, payloads: dict[str, Iterable[bytes | memoryview]],
                  sections: dict[str, Section], file_size: int) -> None:
    # ordinary permissions: mkstemp's 0600 would hide the index from a web server
    with atomic_path(path, mode=ordinary_file_mode(), durable=True) as tmp, open(tmp, "wb") as f:
        crc = 0
        pos = 0

        def emit(data: bytes | memoryview) -> None:
            nonlocal crc, pos
            f.write(data)
            crc = crc32_update(crc, data)
            pos += len(data)

        emit(pack_header(header))
        for name in SECTIONS:
            emit(b"\x00" * (sections[name].offset - pos))
            for chunk in payloads[name]:
                emit(chunk)
        emit(b"\x00" * (file_size - TRAILER_SIZE - pos))
        f.write(struct.pack("<I", crc) + TRAILER_MAGIC)


def _vector_chunks(vectors: np.ndarray, dtype: np.dtype, rows: int = 1 << 16) -> Iterable[memoryview]:
    # Streams a (possibly memory-mapped) array in blocks so saving never doubles memory use.
    for start in range(0, vectors.shape[0], rows):
        block = np.ascontiguousarray(vectors[start:start + rows], dtype=dtype)
        yield memoryview(block).cast("B")


def open_index_fd(path: str | os.PathLike) -> tuple[int, int]:
    """Open ``path`` once for reading: (fd, size); refuses anything but a regular file.

    Why O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer appears
    (``dp-search info fifo`` hung); the flag is harmless for regular files, whose reads never
    block. The caller validates and maps this one descriptor, so a writer that replaces the
    file meanwhile cannot mix two versions.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise IndexFileError(path, "no such index file") from exc
    except OSError as exc:
        raise IndexFileError(path, f"cannot open the index file ({exc.strerror or exc})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise IndexFileError(path, f"is {kind}, not an index file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def _pread_exact(fd: int, length: int, offset: int, path: Path | str | None, what: str) -> bytes:
    chunks = []
    remaining = length
    while remaining:
        try:
            chunk = os.pread(fd, min(remaining, _CRC_CHUNK), offset)
        except OSError as exc:
            raise IndexFileError(path, f"cannot read the {what} ({exc.strerror or exc})") from exc
        if not chunk:
            raise TruncatedIndexError(path, f"file ended inside the {what}")
        chunks.append(chunk)
        offset += len(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _header_from_fd(fd: int, size: int, path: Path | str | None) -> IndexHeader:
    try:
        raw = os.pread(fd, HEADER_SIZE, 0)
    except OSError as exc:
        raise IndexFileError(path, f"cannot read the header ({exc.strerror or exc})") from exc
    return unpack_header(raw, path, size)


def _verify_fd(fd: int, header: IndexHeader, path: Path | str | None) -> None:
    body = header.file_size - TRAILER_SIZE
    crc = 0
    pos = 0
    while pos < body:
        try:
            chunk = os.pread(fd, min(_CRC_CHUNK, body - pos), pos)
        except OSError as exc:
            raise IndexFileError(path, f"cannot read the file ({exc.strerror or exc})") from exc
        if not chunk:
            raise TruncatedIndexError(path, "file ended while computing the checksum")
        crc = crc32_update(crc, chunk)
        pos += len(chunk)
    trailer = os.pread(fd, TRAILER_SIZE, body)
    if len(trailer) != TRAILER_SIZE:
        raise TruncatedIndexError(path, "the 8-byte trailer is missing")
    stored, magic = struct.unpack("<I4s", trailer)
    if magic != TRAILER_MAGIC:
        raise IndexFileError(path, f"bad trailer magic {magic!r} (expected {TRAILER_MAGIC!r})")
    if stored != crc:
        raise ChecksumError(path, f"checksum mismatch (stored CRC-32 {stored:08x}, computed {crc:08x}): "
                                  "the file is damaged; rebuild or re-copy it")


def read_index_header(path: str | os.PathLike) -> IndexHeader:
    """Only the header (cheap); used by ``dp-search info`` and to check compatibility early."""
    path = Path(path)
    fd, size = open_index_fd(path)
    try:
        return _header_from_fd(fd, size, path)
    finally:
        os.close(fd)


def verify_checksum(path: str | os.PathLike, header: IndexHeader | None = None) -> None:
    """Recompute the whole-file CRC-32 and compare it with the trailer; raises :class:`ChecksumError`."""
    path = Path(path)
    fd, size = open_index_fd(path)
    try:
        _verify_fd(fd, header or _header_from_fd(fd, size, path), path)
    finally:
        os.close(fd)


def read_index_file(path: str | os.PathLike, *, verify: bool = True, mmap: bool = True) -> IndexFileContents:
    """Read an index; the vector block is a read-only ``np.memmap`` (zero-copy) when ``mmap``.

    The file is opened once: the header, the checksum, every section and the memory map all
    come from that one descriptor (docs/threat-model.md).
    """
    path = Path(path)
    fd, size = open_index_fd(path)
    try:
        header = _header_from_fd(fd, size, path)
        if verify:
            _verify_fd(fd, header, path)
        s = header.sections

        def section(name: str) -> bytes:
            if not s[name].length:  # an empty section's offset is meaningless (docs): never read it
                return b""
            return _pread_exact(fd, s[name].length, s[name].offset, path, f"{name} section")

        try:
            space_id = section("space_id").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IndexFileError(path, "embedding-space id is not UTF-8") from exc
        scales = np.frombuffer(section("scales"), dtype="<f4").copy() if header.storage == "int8" else None
        id_offsets = np.frombuffer(section("id_offsets"), dtype="<u4").astype(np.int64)
        id_bytes = section("id_bytes")
        metadata_bytes = section("metadata")
        dtype = STORAGE_DTYPES[header.storage]
        shape = (header.count, header.dim)
        if header.count == 0:
            vectors = np.empty(shape, dtype=dtype)
        elif mmap:
            with os.fdopen(os.dup(fd), "rb") as f:  # np.memmap maps this descriptor, not the name
                vectors = np.memmap(f, dtype=dtype, mode="r", offset=s["vectors"].offset, shape=shape)
        else:
            vectors = np.frombuffer(section("vectors"), dtype=dtype).reshape(shape)
    finally:
        os.close(fd)
    check_ids(id_offsets, id_bytes, path)
    if scales is not None and not (np.all(np.isfinite(scales)) and np.all(scales > 0) and np.all(scales <= 1)):
        raise IndexFileError(path, "int8 scales must be finite, positive and at most 1")
    if verify and header.storage == "float32":
        check_finite(vectors, path)
    return IndexFileContents(path=path, header=header, embedding_space_id=space_id, scales=scales,
                             id_offsets=id_offsets, id_bytes=id_bytes, vectors=vectors,
                             metadata_bytes=metadata_bytes, checksum_verified=verify)


def check_ids(id_offsets: np.ndarray, id_bytes: bytes, path: Path | str | None) -> None:
    """ids table consistent and every id valid UTF-8 (checked at load, not at the first search)."""
    if id_offsets[0] != 0 or id_offsets[-1] != len(id_bytes) or np.any(np.diff(id_offsets) < 0):
        raise IndexFileError(path, "ids table offsets are inconsistent with the id bytes")
    try:
        id_bytes.decode("utf-8")
        whole = True
    except UnicodeDecodeError:
        whole = False
    inner = id_offsets[1:-1]
    raw = np.frombuffer(id_bytes, np.uint8)
    inner = inner[inner < len(raw)]
    if whole and not np.any((raw[inner] & 0xC0) == 0x80):  # no id boundary splits a character
        return
    for i, (a, b) in enumerate(zip(id_offsets[:-1].tolist(), id_offsets[1:].tolist(), strict=True)):
        try:
            id_bytes[a:b].decode("utf-8")
        except UnicodeDecodeError:
            raise IndexFileError(path, f"product id {i} is not UTF-8") from None
    raise IndexFileError(path, "product ids are not UTF-8")  # unreachable: some id must fail


#: float32 rows are written unit length (norm error ~1e-7); a row further than this from 1 was not.
UNIT_NORM_TOLERANCE = 1e-3


def check_finite(vectors: np.ndarray, path: Path | str | None, rows: int = 1 << 16) -> None:
    """float32 rows must be finite and unit length: a NaN row would never rank, and a long row
    scores above 1 (a 1e30 row scored ``inf``, which ``--json`` cannot print)."""
    for start in range(0, vectors.shape[0], rows):
        block = np.asarray(vectors[start:start + rows])
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise IndexFileError(path, f"vector {bad} contains NaN or infinity")
        norms = np.sqrt(np.einsum("ij,ij->i", block.astype(np.float64), block.astype(np.float64)))
        off = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE
        if off.any():
            bad = int(np.flatnonzero(off)[0])
            raise IndexFileError(path, f"vector {start + bad} is not unit length (norm {norms[bad]:.6g}); "
                                       "float32 rows are stored normalised")
