// The exact two-stage scan of the Python SDK (docs/sdk.md "Speed") for the JS core:
//  1. every row as int8 codes (the index's own codes, or an int8 shadow of a float32 index, built
//     once) against the query rounded to integers, scored by a WebAssembly SIMD kernel
//     (i32x4.dot_i16x8_s over sign-extended bytes: exact int32 sums); a proven bound B on
//     |coarse - true score| keeps every row within 2B of the running k-th best;
//  2. the caller re-scores those candidates with the float64 reference sums, so the result equals
//     the plain float64 scan's (same positions, same scores, same tie rule).
// Why WebAssembly: V8 runs scalar loops over typed arrays at ~1 ns per multiply-add whatever
// the element type (float64, int32 and SWAR variants measured alike), 3-5x the SDK's numpy
// fallback; the SIMD kernel takes ~0.8 ms for 100k x 128. The module (~150 bytes) is assembled
// below, so no binary file ships; without WebAssembly SIMD (or for a dimension that is not a
// multiple of 8) `CoarseScan.build` returns null and the core keeps its plain scan.

const QMAX = 127;
const BLOCK_ROWS = 4096;
const EPS32 = 2 ** -23; // float32 machine epsilon (Java's Math.ulp(1.0f))

const uleb = (n) => {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const name = (s) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id, bytes) => [id, ...uleb(bytes.length), ...bytes];

/** scan(codes, rows, dim, q, out): out[r] = sum_d codes[r*dim + d] * q[d] (int8 x int16 -> int32). */
function kernelBytes() {
  const [CODES, ROWS, DIM, Q, OUT, J, ACC] = [0, 1, 2, 3, 4, 5, 6];
  const get = (i) => [0x20, i];
  const set = (i) => [0x21, i];
  const tee = (i) => [0x22, i];
  const i32 = (v) => [0x41, v]; // small non-negative constants only (< 64)
  const simd = (op, ...imm) => [0xfd, ...uleb(op), ...imm];
  const lane = (l) => [...get(ACC), ...simd(0x1b, l)]; // i32x4.extract_lane
  const body = [
    0x02, 0x40, ...get(ROWS), 0x45, 0x0d, 0, // block; if rows == 0 break
    0x03, 0x40, // loop over rows
    ...simd(0x0c, ...new Array(16).fill(0)), ...set(ACC), ...i32(0), ...set(J),
    0x03, 0x40, // loop over 8-dimension chunks: acc += dot(load8x8_s(codes + j), load(q + 2j))
    ...get(ACC),
    ...get(CODES), ...get(J), 0x6a, ...simd(0x01, 0, 0),
    ...get(Q), ...get(J), ...i32(1), 0x74, 0x6a, ...simd(0x00, 0, 0),
    ...simd(0xba), ...simd(0xae), ...set(ACC),
    ...get(J), ...i32(8), 0x6a, ...tee(J), ...get(DIM), 0x49, 0x0d, 0,
    0x0b,
    ...get(OUT), ...lane(0), ...lane(1), 0x6a, ...lane(2), 0x6a, ...lane(3), 0x6a, 0x36, 2, 0, // *out = sum
    ...get(OUT), ...i32(4), 0x6a, ...set(OUT),
    ...get(CODES), ...get(DIM), 0x6a, ...set(CODES),
    ...get(ROWS), ...i32(1), 0x6b, ...tee(ROWS), 0x0d, 0,
    0x0b, 0x0b, 0x0b,
  ];
  const func = [2, 1, 0x7f, 1, 0x7b, ...body]; // locals: one i32, one v128
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0]),
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('scan'), 0x00, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ]);
}

let compiled;
/** The compiled kernel, or null where WebAssembly SIMD is unavailable. */
export function simdKernel() {
  if (compiled === undefined) {
    compiled = null;
    try {
      const bytes = kernelBytes();
      if (typeof WebAssembly === 'object' && WebAssembly.validate(bytes)) compiled = new WebAssembly.Module(bytes);
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

export class CoarseScan {
  /**
   * Stage-1 data for one index, or null (no WebAssembly SIMD, dim not a multiple of 8, empty).
   * Costs count x dim bytes of WebAssembly memory: the int8 codes are copied there (int8
   * storage) or the float32 index's int8 shadow is built there.
   */
  static build(storage, vectors, count, dim) {
    const module = simdKernel();
    if (!module || dim % 8 !== 0 || count === 0) return null;
    const qOff = 0;
    const outOff = Math.ceil((2 * dim) / 16) * 16;
    const codesOff = outOff + 4 * BLOCK_ROWS;
    const memory = new WebAssembly.Memory({ initial: Math.ceil((codesOff + count * dim) / 65536) });
    const { exports } = new WebAssembly.Instance(module, { env: { mem: memory } });
    const codes = new Int8Array(memory.buffer, codesOff, count * dim);
    const grid = new Float64Array(dim).fill(1);
    let codePeak = 0;
    let residualPeak = 0;
    let rowPeak = 0;
    const int8 = storage === 'int8';
    if (!int8) { // the shadow's per-dimension step: the column's largest magnitude / 127
      const peakAbs = new Float64Array(dim);
      for (let i = 0; i < count * dim; i++) peakAbs[i % dim] = Math.max(peakAbs[i % dim], Math.abs(vectors[i]));
      peakAbs.forEach((p, d) => { grid[d] = (p > 0 ? p : 1) / QMAX; });
    }
    for (let o = 0; o < count * dim; o += dim) { // one pass for both storages (int8: x is the code)
      let cs = 0;
      let rs = 0;
      let xs = 0;
      for (let d = 0; d < dim; d++) {
        const x = vectors[o + d];
        const c = int8 ? x : Math.max(-QMAX, Math.min(QMAX, Math.round(x / grid[d])));
        codes[o + d] = c;
        cs += c * c;
        rs += (x - c * grid[d]) ** 2;
        xs += x * x;
      }
      codePeak = Math.max(codePeak, cs);
      residualPeak = Math.max(residualPeak, rs);
      rowPeak = Math.max(rowPeak, xs);
    }
    return new CoarseScan({
      dim, count, grid, scan: exports.scan, qOff, outOff, codesOff,
      q16: new Int16Array(memory.buffer, qOff, dim), scores: new Int32Array(memory.buffer, outOff, BLOCK_ROWS),
      codeNorm: Math.sqrt(codePeak), residualNorm: Math.sqrt(residualPeak), rowNorm: Math.sqrt(rowPeak),
    });
  }

  constructor(fields) {
    Object.assign(this, fields);
  }

  /**
   * Positions (ascending) of every row whose float64 score can reach the top k.
   * @param {Float32Array} w the scoring weights (GalleryIndex.scoringQuery)
   * @param {number} k
   * @param {((row: number) => boolean)|null} eligible the metadata filter, or null
   */
  candidates(w, k, eligible) {
    const { dim, grid, q16, scores } = this;
    const u = new Float64Array(dim);
    let peak = 0;
    let wn = 0;
    for (let d = 0; d < dim; d++) {
      u[d] = w[d] * grid[d];
      peak = Math.max(peak, Math.abs(u[d]));
      wn += w[d] * w[d];
    }
    const step = peak > 0 ? peak / QMAX : 1;
    let err = 0;
    for (let d = 0; d < dim; d++) {
      const q = Math.round(u[d] / step);
      q16[d] = q;
      const e = u[d] - q * step;
      err += e * e;
    }
    wn = Math.sqrt(wn);
    const gamma = (dim * EPS32) / (1 - dim * EPS32);
    const bound = this.codeNorm * Math.sqrt(err) + this.residualNorm * wn + 2 * gamma * this.rowNorm * wn;
    const margin = (2 * bound * (1 + 1e-6)) / step + 1e-6 * this.codeNorm * QMAX;
    const kept = new Kept(k, margin);
    for (let start = 0; start < this.count; start += BLOCK_ROWS) {
      const rows = Math.min(BLOCK_ROWS, this.count - start);
      this.scan(this.codesOff + start * dim, rows, dim, this.qOff, this.outOff);
      for (let r = 0; r < rows; r++) {
        const s = scores[r];
        if (s < kept.thr) continue;
        if (eligible && !eligible(start + r)) continue;
        kept.offer(start + r, s);
      }
    }
    return kept.positions();
  }
}

/** The rows kept so far (ascending): every row whose coarse score is at least (k-th best - margin). */
class Kept {
  constructor(k, margin) {
    this.heap = new Int32Array(k); // min-heap of the k best coarse scores
    this.size = 0;
    this.margin = margin;
    this.thr = -Infinity;
    this.pos = new Int32Array(Math.max(64, 8 * k));
    this.sc = new Int32Array(this.pos.length);
    this.n = 0;
  }

  offer(i, s) {
    if (this.#pushTop(s)) this.thr = Math.ceil(this.heap[0] - this.margin);
    if (this.n === this.pos.length) { // compact with the current threshold, then grow if still full
      let m = 0;
      for (let j = 0; j < this.n; j++) {
        if (this.sc[j] >= this.thr) {
          this.pos[m] = this.pos[j];
          this.sc[m++] = this.sc[j];
        }
      }
      this.n = m;
      if (m > this.pos.length / 2) {
        const pos = new Int32Array(this.pos.length * 2);
        const sc = new Int32Array(this.pos.length * 2);
        pos.set(this.pos);
        sc.set(this.sc);
        this.pos = pos;
        this.sc = sc;
      }
    }
    this.pos[this.n] = i;
    this.sc[this.n++] = s;
  }

  /** Offers s to the top-k heap; true when the k-th best changed (once k values are held). */
  #pushTop(s) {
    const h = this.heap;
    if (this.size < h.length) {
      let i = this.size++;
      h[i] = s;
      while (i > 0 && h[(i - 1) >> 1] > h[i]) {
        const p = (i - 1) >> 1;
        [h[p], h[i]] = [h[i], h[p]];
        i = p;
      }
      return this.size === h.length;
    }
    if (s <= h[0]) return false;
    h[0] = s;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < this.size && h[l] < h[min]) min = l;
      if (r < this.size && h[r] < h[min]) min = r;
      if (min === i) return true;
      [h[min], h[i]] = [h[i], h[min]];
      i = min;
    }
  }

  positions() {
    let m = 0;
    for (let j = 0; j < this.n; j++) if (this.sc[j] >= this.thr) this.pos[m++] = this.pos[j];
    return this.pos.slice(0, m);
  }
}
