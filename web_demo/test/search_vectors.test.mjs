// tests/vectors/index/: the JS core reproduces the Python SDK's top-K positions, product ids and
// scores (score_atol) for the float32 and int8 indexes, with and without metadata filters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readIndex } from '../core/index.mjs';
import { bytes, f32, json } from './vectors.mjs';

const expected = json('index/expected.json');

for (const name of ['float32', 'int8']) {
  test(`${name} index reproduces the SDK's ids and scores for every case`, () => {
    const spec = expected.indexes[name];
    const index = readIndex(bytes(`index/${spec.file}`), { source: spec.file });
    assert.equal(index.dim, expected.dim);
    assert.equal(index.size, expected.count);
    assert.equal(index.embeddingSpaceId, expected.embedding_space_id);
    assert.equal(index.storage, spec.storage);
    const weights = name === 'int8' ? spec.int8_weights : expected.normalized_queries;
    expected.queries.forEach((q, i) => {
      assert.deepEqual(Array.from(index.scoringQuery(q)), weights[i].map(Math.fround), `scoring weights of query ${i}`);
    });
    let checked = 0;
    for (const c of spec.cases) {
      expected.queries.forEach((q, qi) => {
        const want = c.results[qi];
        const got = index.search(q, c.k, c.filter);
        const what = `${name} k=${c.k} filter=${JSON.stringify(c.filter)} query ${qi}`;
        assert.deepEqual(got.map((h) => h.position), want.positions, `${what}: positions`);
        assert.deepEqual(got.map((h) => h.productId), want.product_ids, `${what}: product ids`);
        got.forEach((h, r) => {
          assert.ok(Math.abs(h.score - want.scores[r]) <= expected.score_atol,
            `${what}: score at rank ${r + 1} ${h.score} vs ${want.scores[r]}`);
          checked++;
        });
      });
    }
    assert.ok(checked > 100, `only ${checked} results compared`);
  });

  test(`${name} index: distinct products (best image each) match the SDK`, () => {
    const spec = expected.indexes[name];
    const index = readIndex(bytes(`index/${spec.file}`), { source: spec.file });
    let checked = 0;
    for (const c of spec.product_cases) {
      expected.queries.forEach((q, qi) => {
        const want = c.results[qi];
        const got = index.searchProducts(q, c.k, c.filter);
        const what = `${name} products k=${c.k} filter=${JSON.stringify(c.filter)} query ${qi}`;
        assert.deepEqual(got.map((h) => h.position), want.positions, `${what}: positions`);
        assert.deepEqual(got.map((h) => h.productId), want.product_ids, `${what}: product ids`);
        got.forEach((h, r) => {
          assert.ok(Math.abs(h.score - want.scores[r]) <= expected.score_atol, `${what}: score at rank ${r + 1}`);
          checked++;
        });
      });
    }
    assert.ok(checked > 100, `only ${checked} product results compared`);
  });
}

test('int8 scales are read as stored and dequantise within half a step', () => {
  const f = readIndex(bytes('index/float32.dpindex'));
  const q = readIndex(bytes('index/int8.dpindex'));
  assert.deepEqual(Array.from(q.scales), expected.indexes.int8.scales.map(Math.fround));
  for (let i = 0; i < f.size; i++) {
    const a = f.vector(i);
    const b = q.vector(i);
    for (let d = 0; d < f.dim; d++) assert.ok(Math.abs(a[d] - b[d]) <= q.scales[d] / 2 + 1e-7, `item ${i} dim ${d}`);
  }
});

test('the queries file holds the same float32 values as the inline JSON', () => {
  const file = f32(`index/${expected.queries_file}`);
  assert.deepEqual(Array.from(file), expected.queries.flat().map(Math.fround));
});

test('ids and metadata decode as written (UTF-8 id, missing category, arrays, bools)', () => {
  const index = readIndex(bytes('index/float32.dpindex'));
  assert.equal(index.ids[23], 'p-café-23');
  assert.equal(index.ids[0], index.ids[1]);
  assert.ok(!('category' in index.items[11]));
  assert.ok(Array.isArray(index.items[5].tags));
  assert.equal(typeof index.items[0].in_stock, 'boolean');
});

test('ties go to the smaller position; queries need not be unit length', () => {
  const index = readIndex(bytes('index/float32.dpindex'));
  const q = index.vector(23).map((v) => v * 3);
  const [a, b] = index.search(q, 2);
  assert.deepEqual([a.position, b.position], [7, 23]);
  assert.equal(a.score, b.score);
});

test('an empty index searches to nothing; an unaligned buffer reads the same', () => {
  const empty = readIndex(bytes('index/empty.dpindex'));
  assert.equal(empty.size, 0);
  assert.deepEqual(empty.search(new Float32Array(16).fill(1), 5), []);
  const raw = bytes('index/int8.dpindex');
  const shifted = new Uint8Array(raw.length + 3);
  shifted.set(raw, 3);
  const a = readIndex(raw);
  const b = readIndex(shifted.subarray(3));
  assert.deepEqual(b.search(a.vector(5), 40), a.search(a.vector(5), 40));
});
