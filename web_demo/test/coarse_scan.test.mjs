// The two-stage scan (core/coarse.mjs: WebAssembly SIMD int8 stage, float64 re-scoring) returns
// exactly what the plain float64 scan returns: same positions and the same scores, on random,
// tied (items 7 and 23 are equal), extreme and filtered queries, k from 1 to beyond the gallery,
// and on a gallery larger than one scan block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CoarseScan, simdKernel } from '../core/coarse.mjs';
import { readIndex } from '../core/index.mjs';
import { bytes } from './vectors.mjs';

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const gauss = (r) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

function compare(coarse, plain, queries, ks, filters) {
  let compared = 0;
  for (const [t, q] of queries.entries()) {
    for (const k of ks) {
      const filter = filters[t % filters.length];
      const a = coarse.search(q, k, filter);
      const b = plain.search(q, k, filter);
      assert.equal(a.length, b.length, `query ${t} k=${k}`);
      a.forEach((h, r) => {
        assert.equal(h.position, b[r].position, `query ${t} k=${k} rank ${r}`);
        assert.equal(h.score, b[r].score, `query ${t} k=${k} rank ${r} score`);
        compared++;
      });
    }
  }
  return compared;
}

test('this node runs the WebAssembly SIMD kernel (else the core would silently use its plain scan)', () => {
  assert.ok(simdKernel(), 'WebAssembly SIMD unavailable');
});

for (const name of ['float32', 'int8']) {
  test(`${name}: the two-stage scan equals the plain float64 scan`, () => {
    const coarse = readIndex(bytes(`index/${name}.dpindex`));
    const plain = readIndex(bytes(`index/${name}.dpindex`));
    plain.useCoarseScan = false;
    const r = rng(7);
    const queries = [];
    for (let t = 0; t < 400; t++) {
      if (t % 5 === 0) {
        queries.push(coarse.vector(t % coarse.size)); // an item itself: ties with its duplicate
        continue;
      }
      const scale = 10 ** (Math.floor(r() * 61) - 30); // NaN-free extremes
      const q = Float32Array.from({ length: coarse.dim }, () => gauss(r) * scale);
      if (t % 7 === 0) q[Math.floor(r() * coarse.dim)] *= 1e6;
      queries.push(q);
    }
    const n = compare(coarse, plain, queries, [1, 3, 5, 40, 100], [{ category: 'mug' }, null, null]);
    assert.ok(coarse.coarseScan instanceof CoarseScan);
    assert.ok(n > 10000, `only ${n} results compared`);
  });
}

test('a gallery of several scan blocks with exact ties across them', () => {
  const base = readIndex(bytes('index/float32.dpindex'));
  const dim = base.dim;
  const count = 9000; // more than two 4096-row blocks
  const r = rng(3);
  const vectors = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) { // unit rows, as the SDK stores them
    const row = vectors.subarray(i * dim, (i + 1) * dim);
    for (let d = 0; d < dim; d++) row[d] = gauss(r);
    const norm = Math.hypot(...row);
    for (let d = 0; d < dim; d++) row[d] /= norm;
  }
  for (const i of [10, 4095, 4096, 8999]) vectors.copyWithin(i * dim, 5 * dim, 6 * dim); // equal rows
  const make = () => Object.assign(Object.create(Object.getPrototypeOf(base)), base, {
    vectors, ids: Array.from({ length: count }, (_, i) => `p${i}`), items: Array.from({ length: count }, () => ({})),
    header: { ...base.header, count }, coarseScan: undefined, useCoarseScan: true,
  });
  const coarse = make();
  const plain = make();
  plain.useCoarseScan = false;
  const queries = [vectors.subarray(5 * dim, 6 * dim), ...Array.from({ length: 20 }, () => Float32Array.from({ length: dim }, () => gauss(r)))];
  const n = compare(coarse, plain, queries, [1, 5, 10, 200], [null]);
  assert.ok(n > 1000);
  assert.deepEqual(coarse.search(queries[0], 5).map((h) => h.position), [5, 10, 4095, 4096, 8999]);
});
