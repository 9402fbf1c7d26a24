// Model/index mix-ups and tiny inputs: the Python SDK's error class and exact message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readIndex } from '../core/index.mjs';
import { bytes } from './vectors.mjs';

// The bad/ files and their expected errors: hostile_vectors.test.mjs, from bad/expected.json.

test('five bytes are too short to be an index', () => {
  assert.throws(() => readIndex(new Uint8Array(5)), { name: 'TruncatedIndexError', message: 'only 5 bytes; too short to be a gallery index' });
});

test('a damaged vector block loads when the checksum is skipped (the SDK\'s verify=False)', () => {
  assert.equal(readIndex(bytes('bad/bad_checksum.dpindex'), { verify: false }).size, 40);
});

test('embedding-space mismatch, wrong query dimension, zero / NaN query, k < 1', () => {
  const index = readIndex(bytes('index/float32.dpindex'), { source: 'float32.dpindex' });
  index.requireEmbeddingSpace('test-vectors-space-v1');
  index.requireEmbeddingSpace(''); // unknown model: the SDK skips the check
  assert.throws(() => index.requireEmbeddingSpace('other-space'), {
    name: 'EmbeddingSpaceMismatchError',
    message: "float32.dpindex: built in embedding space 'test-vectors-space-v1' but the querying model produces 'other-space'; rebuild the index with this model (dp-search build)",
  });
  assert.throws(() => index.search(new Float32Array(15), 5), {
    name: 'QueryDimensionError',
    message: 'float32.dpindex: query has dimension 15 but the index holds 16-dimensional embeddings (wrong model?)',
  });
  assert.throws(() => index.search(new Float32Array(16), 5), { message: 'query 0 is all zeros; cannot normalise' });
  assert.throws(() => index.search(new Float32Array(16).fill(NaN), 5), { message: 'querys contain NaN or infinity' });
  assert.throws(() => index.search(index.vector(0), 0), { message: 'k must be at least 1, got 0' });
});
