// Reader and search for the `.dpindex` gallery file. docs/index-format.md is the specification;
// sdk_python/index_format.py the reference reader this module mirrors check for check, in the
// same order, with the same error classes and words.
import { crc32 } from './crc32.mjs';
import {
  ChecksumError, EmbeddingSpaceMismatchError, IndexFileError, QueryDimensionError, TruncatedIndexError,
  UnsupportedVersionError, messages, pyBytesRepr,
} from './errors.mjs';
import { CoarseScan } from './coarse.mjs';
import { matchesFilter } from './filter.mjs';
import { parseJson } from './json.mjs';

/** float32 rows are written unit length; a row further than this from 1 was not (Python: UNIT_NORM_TOLERANCE). */
const UNIT_NORM_TOLERANCE = 1e-3;

export const MAGIC = new Uint8Array([0x44, 0x50, 0x49, 0x4e, 0x44, 0x45, 0x58, 0x00]); // DPINDEX\0
export const TRAILER_MAGIC = new Uint8Array([0x44, 0x50, 0x49, 0x45]); // DPIE
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = 256;
export const TRAILER_SIZE = 8;
export const SECTIONS = ['space_id', 'scales', 'id_offsets', 'id_bytes', 'vectors', 'metadata'];
export const VECTOR_ALIGNMENT = 64;
const SECTION_ALIGNMENT = 8;
const SECTION_TABLE_OFFSET = 40;
const HEADER_CRC_OFFSET = HEADER_SIZE - 4;
const STORAGE = { 1: 'float32', 2: 'int8' };

const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function u64(view, off) {
  const lo = view.getUint32(off, true);
  const hi = view.getUint32(off + 4, true);
  if (hi >= 0x200000) return Infinity; // >= 2^53: not a real file (docs: readers may reject)
  return lo + hi * 2 ** 32;
}

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('expected an ArrayBuffer or a Uint8Array');
}

/** Decodes and validates the 256-byte header; `actualSize` is the whole file's length. */
export function unpackHeader(bytes, source = null, actualSize = bytes.length) {
  const n = bytes.length;
  if (n < 12) throw new TruncatedIndexError(source, `only ${n} bytes; too short to be a gallery index`);
  const magic = bytes.subarray(0, 8);
  if (!sameBytes(magic, MAGIC)) {
    throw new IndexFileError(source, `not a DeepProduct gallery index (magic ${pyBytesRepr(magic)}, expected ${pyBytesRepr(MAGIC)})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(8, true);
  const headerSize = view.getUint16(10, true);
  if (version > FORMAT_VERSION) {
    throw new UnsupportedVersionError(source, `index format version ${version} is newer than this reader supports (${FORMAT_VERSION}); upgrade deepproduct or rebuild the index with this version`);
  }
  if (version < 1) throw new IndexFileError(source, `invalid index format version ${version}`);
  if (headerSize !== HEADER_SIZE) {
    throw new IndexFileError(source, `header size ${headerSize} is not ${HEADER_SIZE} as format v1 requires`);
  }
  if (n < HEADER_SIZE) throw new TruncatedIndexError(source, `file ends inside the ${HEADER_SIZE}-byte header (${n} bytes)`);
  if (crc32(bytes.subarray(0, HEADER_CRC_OFFSET)) !== view.getUint32(HEADER_CRC_OFFSET, true)) {
    throw new ChecksumError(source, 'header CRC-32 mismatch: the header is damaged');
  }
  const flags = view.getUint32(12, true);
  const dim = view.getUint32(16, true);
  const storageCode = view.getUint8(20);
  const metricCode = view.getUint8(21);
  const vectorAlignment = view.getUint16(22, true);
  const count = u64(view, 24);
  const fileSize = u64(view, 32);
  if (!(storageCode in STORAGE)) throw new IndexFileError(source, `unknown storage code ${storageCode}`);
  if (metricCode !== 1) throw new IndexFileError(source, `unknown metric code ${metricCode}`);
  if (dim < 1) throw new IndexFileError(source, `invalid embedding dimension ${dim}`);
  if (vectorAlignment !== VECTOR_ALIGNMENT) {
    throw new IndexFileError(source, `vector alignment ${vectorAlignment} is not ${VECTOR_ALIGNMENT} as format v1 requires`);
  }
  if (!Number.isFinite(count) || !Number.isFinite(fileSize)) {
    throw new IndexFileError(source, 'header sizes are out of range for this reader');
  }
  const sections = {};
  SECTIONS.forEach((name, i) => {
    const offset = u64(view, SECTION_TABLE_OFFSET + 16 * i);
    const length = u64(view, SECTION_TABLE_OFFSET + 16 * i + 8);
    sections[name] = { offset, length, end: offset + length };
  });
  const header = { formatVersion: version, flags, dim, storage: STORAGE[storageCode], metric: 'cosine', vectorAlignment, count, fileSize, sections };
  if (actualSize < fileSize) {
    throw new TruncatedIndexError(source, `truncated: ${actualSize} bytes on disk but the header says ${fileSize} (an interrupted copy or download?)`);
  }
  if (actualSize > fileSize) throw new IndexFileError(source, `${actualSize - fileSize} unexpected bytes after the end of the index`);
  checkSections(header, source);
  return header;
}

function checkSections(h, source) {
  const itemsize = h.storage === 'int8' ? 1 : 4;
  const expected = { scales: h.storage === 'int8' ? 4 * h.dim : 0, id_offsets: 4 * (h.count + 1), vectors: h.count * h.dim * itemsize };
  for (const [name, length] of Object.entries(expected)) {
    if (h.sections[name].length !== length) {
      throw new IndexFileError(source, `${name} section is ${h.sections[name].length} bytes, expected ${length}`);
    }
  }
  const limit = h.fileSize - TRAILER_SIZE;
  for (const name of SECTIONS) {
    const s = h.sections[name];
    if (s.length && (s.offset < HEADER_SIZE || s.end > limit)) {
      throw new IndexFileError(source, `${name} section [${s.offset}, ${s.end}) lies outside the file body`);
    }
  }
  if (h.count && h.sections.vectors.offset % h.vectorAlignment) {
    throw new IndexFileError(source, 'vector block is not aligned as the header states');
  }
  // Non-empty sections: 8-aligned and disjoint (sorted as the SDK sorts: offset, end, name).
  const used = SECTIONS.filter((name) => h.sections[name].length).map((name) => [h.sections[name].offset, h.sections[name].end, name])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0));
  for (const [offset, , name] of used) {
    if (offset % SECTION_ALIGNMENT) throw new IndexFileError(source, `${name} section offset ${offset} is not a multiple of ${SECTION_ALIGNMENT}`);
  }
  for (let i = 1; i < used.length; i++) {
    if (used[i][0] < used[i - 1][1]) throw new IndexFileError(source, `sections ${used[i - 1][2]} and ${used[i][2]} overlap`);
  }
}

/** Whole-file CRC-32 over everything before the trailer, and the trailer's end magic. */
export function verifyChecksum(bytes, header, source = null) {
  const body = header.fileSize - TRAILER_SIZE;
  const computed = crc32(bytes.subarray(0, body));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stored = view.getUint32(body, true);
  const magic = bytes.subarray(body + 4, body + 8);
  if (!sameBytes(magic, TRAILER_MAGIC)) {
    throw new IndexFileError(source, `bad trailer magic ${pyBytesRepr(magic)} (expected ${pyBytesRepr(TRAILER_MAGIC)})`);
  }
  if (stored !== computed) {
    const hex = (v) => v.toString(16).padStart(8, '0');
    throw new ChecksumError(source, `checksum mismatch (stored CRC-32 ${hex(stored)}, computed ${hex(computed)}): the file is damaged; rebuild or re-copy it`);
  }
}

// ignoreBOM: a leading U+FEFF in an id, the space id or the metadata is kept (and, in the
// metadata, refused by the JSON grammar), as the Python SDK and the JVM core read those bytes; the
// default (false) would silently strip it and give other ids than the other cores.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes, source, problem) {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new IndexFileError(source, problem);
  }
}

/**
 * Parses a `.dpindex` file held in memory (fetch().arrayBuffer(), fs.readFileSync).
 * @param {ArrayBuffer|Uint8Array} data
 * @param {{source?: string, verify?: boolean}} options verify=false skips the whole-file CRC.
 */
export function readIndex(data, { source = null, verify = true } = {}) {
  const bytes = toBytes(data);
  const header = unpackHeader(bytes, source, bytes.length);
  if (verify) verifyChecksum(bytes, header, source);
  const sec = (name) => bytes.subarray(header.sections[name].offset, header.sections[name].offset + header.sections[name].length);
  const spaceId = decodeUtf8(sec('space_id'), source, 'embedding-space id is not UTF-8');
  const scales = header.storage === 'int8' ? littleFloat32(sec('scales')) : null;
  const offBytes = sec('id_offsets');
  const offView = new DataView(offBytes.buffer, offBytes.byteOffset, offBytes.byteLength);
  const offsets = Array.from({ length: header.count + 1 }, (_, i) => offView.getUint32(4 * i, true));
  const idBytes = sec('id_bytes');
  const vecBytes = sec('vectors');
  const metaBytes = sec('metadata');
  let consistent = offsets[0] === 0 && offsets[header.count] === idBytes.length;
  for (let i = 0; consistent && i < header.count; i++) consistent = offsets[i + 1] >= offsets[i];
  if (!consistent) throw new IndexFileError(source, 'ids table offsets are inconsistent with the id bytes');
  if (scales && !scales.every((s) => Number.isFinite(s) && s > 0 && s <= 1)) {
    throw new IndexFileError(source, 'int8 scales must be finite, positive and at most 1');
  }
  const ids = [];
  for (let i = 0; i < header.count; i++) {
    ids.push(decodeUtf8(idBytes.subarray(offsets[i], offsets[i + 1]), source, `product id ${i} is not UTF-8`));
  }
  const vectors = header.storage === 'float32'
    ? littleFloat32(vecBytes)
    : new Int8Array(vecBytes.buffer, vecBytes.byteOffset, vecBytes.byteLength);
  if (verify && header.storage === 'float32') {
    const bad = vectors.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new IndexFileError(source, `vector ${Math.floor(bad / header.dim)} contains NaN or infinity`);
    // Rows are stored unit length (docs/index-format.md): a longer row would score above 1.
    for (let r = 0; r < header.count; r++) {
      let sq = 0;
      for (let j = r * header.dim; j < (r + 1) * header.dim; j++) sq += vectors[j] * vectors[j];
      const norm = Math.sqrt(sq);
      if (Math.abs(norm - 1) > UNIT_NORM_TOLERANCE) {
        throw new IndexFileError(source, `vector ${r} is not unit length (norm ${norm.toPrecision(6)}); `
          + 'float32 rows are stored normalised');
      }
    }
  }
  const doc = parseMetadata(metaBytes, header.count, source);
  return new GalleryIndex({ header, source, spaceId, scales, ids, items: doc.items, info: doc.index ?? {}, vectors });
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** float32 LE values: a zero-copy view when aligned on a little-endian host (the vector block is
 * 64-byte aligned in the file), else a copy through DataView. */
function littleFloat32(bytes) {
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  }
  const out = new Float32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

function parseMetadata(raw, count, source) {
  let doc;
  try {
    doc = parseJson(raw); // UTF-8 bytes: decoded strictly, a BOM kept (and refused)
  } catch (exc) {
    throw new IndexFileError(source, `metadata block is not valid UTF-8 JSON (${exc.message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !Array.isArray(doc.items)) {
    throw new IndexFileError(source, "metadata block must be a JSON object with an 'items' array");
  }
  if (doc.items.length !== count) {
    throw new IndexFileError(source, `metadata has ${doc.items.length} items but the header says ${count}`);
  }
  if (!doc.items.every((it) => it !== null && typeof it === 'object' && !Array.isArray(it))) {
    throw new IndexFileError(source, 'every metadata item must be a JSON object');
  }
  return doc;
}

/** One row's score: eight independent float64 sums in a fixed order (equal rows score equally). */
function rowScore(w, v, base, d) {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  let j = 0;
  for (; j + 7 < d; j += 8) {
    const o = base + j;
    s0 += w[j] * v[o];
    s1 += w[j + 1] * v[o + 1];
    s2 += w[j + 2] * v[o + 2];
    s3 += w[j + 3] * v[o + 3];
    s4 += w[j + 4] * v[o + 4];
    s5 += w[j + 5] * v[o + 5];
    s6 += w[j + 6] * v[o + 6];
    s7 += w[j + 7] * v[o + 7];
  }
  for (; j < d; j++) s0 += w[j] * v[base + j];
  return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

export class GalleryIndex {
  constructor({ header, source, spaceId, scales, ids, items, info, vectors }) {
    this.header = header;
    this.source = source;
    /** Embedding-space id of the model that built the index ('' = unknown). */
    this.embeddingSpaceId = spaceId;
    this.scales = scales;
    this.ids = ids;
    this.items = items;
    this.info = info;
    this.vectors = vectors;
    /** false: the plain float64 scan of every row (the reference the tests compare with). */
    this.useCoarseScan = true;
    this.coarseScan = undefined; // built on first search (CoarseScan.build; null: not available)
  }

  get dim() { return this.header.dim; }
  get size() { return this.ids.length; }
  get storage() { return this.header.storage; }

  /** Item i's vector, dequantised for int8 storage (code * scale[d] in float32). */
  vector(i) {
    const d = this.dim;
    const out = new Float32Array(d);
    for (let j = 0; j < d; j++) {
      out[j] = this.scales ? Math.fround(this.vectors[i * d + j] * this.scales[j]) : this.vectors[i * d + j];
    }
    return out;
  }

  /**
   * Refuses a model whose manifest names another embedding space (vectors from different models
   * are not comparable). As in the SDK's check_embedding_space, an empty id on either side
   * (unknown model) skips the check.
   */
  requireEmbeddingSpace(modelSpaceId) {
    if (modelSpaceId && this.embeddingSpaceId !== '' && this.embeddingSpaceId !== modelSpaceId) {
      throw new EmbeddingSpaceMismatchError(this.source, messages.spaceMismatch(this.embeddingSpaceId, modelSpaceId));
    }
  }

  /** qn = float32(q / ||q||) with the norm in float64; for int8, w = float32(qn * scale). */
  scoringQuery(q) {
    if (q.length !== this.dim) throw new QueryDimensionError(this.source, messages.queryDimension(q.length, this.dim));
    let ss = 0;
    for (const v of q) {
      if (!Number.isFinite(v)) throw new RangeError(messages.nonFiniteQuery());
      const f = Math.fround(v); // the query is float32, as in the SDK
      ss += f * f;
    }
    const n = Math.sqrt(ss);
    if (n === 0) throw new RangeError(messages.zeroQuery());
    const w = new Float32Array(q.length);
    for (let d = 0; d < q.length; d++) {
      const qn = Math.fround(Math.fround(q[d]) / n);
      w[d] = this.scales ? Math.fround(qn * this.scales[d]) : qn;
    }
    return w;
  }

  /**
   * The k best items for `query`, best first, ties by smaller position; scores per
   * docs/index-format.md "Scoring" (float64 accumulation).
   * @param {ArrayLike<number>} query
   * @param {number} k
   * @param {Object<string, *>} [filter] metadata field -> value or array of accepted values
   * @returns {{position:number, productId:string, score:number, item:Object}[]}
   */
  search(query, k = 5, filter = null) {
    if (!(k >= 1)) throw new RangeError(messages.badK(k));
    const w32 = this.scoringQuery(query);
    const w = Float64Array.from(w32); // the float32 weights, read as doubles once
    const d = this.dim;
    const v = this.vectors;
    const n = this.ids.length;
    const useFilter = filter && Object.keys(filter).length > 0;
    // A sorted top-k (best first) in typed arrays: no per-item objects, no full sort.
    const cap = Math.min(k, n);
    const topS = new Float64Array(cap);
    const topP = new Int32Array(cap);
    let size = 0;
    // Two stages where WebAssembly SIMD runs (coarse.mjs): the candidates, ascending, then only
    // they get the float64 score below; else every row (or every row the filter admits).
    if (this.useCoarseScan && this.coarseScan === undefined) {
      this.coarseScan = CoarseScan.build(this.storage, v, n, d);
    }
    const coarse = this.useCoarseScan && cap > 0 ? this.coarseScan : null;
    const rows = coarse ? coarse.candidates(w32, cap, useFilter ? (i) => matchesFilter(this.items[i], filter) : null) : null;
    const count = rows ? rows.length : n;
    for (let c = 0; c < count; c++) {
      const i = rows ? rows[c] : c;
      if (!rows && useFilter && !matchesFilter(this.items[i], filter)) continue;
      const s = rowScore(w, v, i * d, d);
      // Positions arrive in increasing order, so an equal score never displaces a kept one.
      if (size === cap && !(s > topS[cap - 1])) continue;
      let r = size < cap ? size++ : cap - 1;
      while (r > 0 && s > topS[r - 1]) {
        topS[r] = topS[r - 1];
        topP[r] = topP[r - 1];
        r--;
      }
      topS[r] = s;
      topP[r] = i;
    }
    const out = [];
    for (let r = 0; r < size; r++) {
      const position = topP[r];
      out.push({ position, productId: this.ids[position], score: topS[r], item: this.items[position] });
    }
    return out;
  }

  /**
   * The k best distinct products, each scored by its best image (the hit's position), best
   * first; ties by smaller position -- the SDK's `search(..., unique_products=True)`. Products
   * rank by their first item in the item ranking, so the item search deepens until k appear.
   */
  searchProducts(query, k = 5, filter = null) {
    if (!(k >= 1)) throw new RangeError(messages.badK(k));
    let depth = Math.max(4 * k, 16);
    for (;;) {
      const hits = this.search(query, depth, filter);
      const seen = new Set();
      const out = [];
      for (const h of hits) {
        if (out.length === k) break;
        if (!seen.has(h.productId)) {
          seen.add(h.productId);
          out.push(h);
        }
      }
      if (out.length === k || hits.length < depth || depth >= this.ids.length) return out;
      depth = Math.min(depth * 4, this.ids.length);
    }
  }
}
