// Unit tests of the JS core that need no vectors: CRC-32 check value, JSON-equality filters,
// manifest errors, and preprocessing invariants (exact identity at the model's size, alpha).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from '../core/crc32.mjs';
import { jsonEquals, matchesFilter } from '../core/filter.mjs';
import { loadManifest } from '../core/manifest.mjs';
import { defaultSpec, pairwiseSum, preprocessRgba, resizedSize, specFromManifest } from '../core/preprocess.mjs';
import { json } from './vectors.mjs';

test('CRC-32 check value of "123456789" is 0xCBF43926 (docs/index-format.md)', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  const bytes = new TextEncoder().encode('123456789');
  assert.equal(crc32(bytes.subarray(4), crc32(bytes.subarray(0, 4))), 0xcbf43926, 'streaming');
});

test('filters use JSON equality and list-as-any-of; a missing field is not eligible', () => {
  assert.ok(jsonEquals(1, 1.0));
  assert.ok(!jsonEquals(true, 1));
  assert.ok(!jsonEquals(null, 0));
  assert.ok(jsonEquals({ a: [1, 'x'] }, { a: [1, 'x'] }));
  const item = { category: 'mug', price: 5, sale: false, tag: null };
  assert.ok(matchesFilter(item, { category: 'mug' }));
  assert.ok(matchesFilter(item, { category: ['lamp', 'mug'], price: 5.0 }));
  assert.ok(matchesFilter(item, { sale: false, tag: null }));
  assert.ok(!matchesFilter(item, { sale: 0 }));
  assert.ok(!matchesFilter(item, { colour: 'red' }));
  assert.ok(!matchesFilter({}, { tag: null }));
});

test('manifest errors read like the Python SDK\'s', () => {
  const schema = json('../../export/manifest.schema.json');
  assert.throws(() => loadManifest('{"format": "x"}', 'm.json', schema), { message: "m.json: not a DeepProduct model manifest (format='x')" });
  assert.throws(() => loadManifest('{"format": "deepproduct-model-manifest", "manifest_version": 2}', 'm.json', schema),
    { message: 'm.json: manifest version 2 is newer than this SDK supports (1)' });
  assert.throws(() => loadManifest('{"format": "deepproduct-model-manifest", "manifest_version": 1}', 'm.json', schema),
    { message: 'm.json: model: required field is missing (manifest schema)' });
  assert.throws(() => loadManifest('{}', 'm.json'), { name: 'ManifestError', message: /no manifest schema given/ });
  assert.throws(() => specFromManifest({ resize_algorithm: 'bilinear' }), { message: "unknown resize algorithm 'bilinear'" });
  assert.throws(() => specFromManifest({ version: 2 }), /newer than this SDK understands/);
});

test('pairwise sum equals a plain sum for short rows and is order-stable', () => {
  const a = Float64Array.from({ length: 300 }, (_, i) => 1 / (i + 1));
  let plain = 0;
  for (const x of a) plain += x;
  assert.ok(Math.abs(pairwiseSum(a, 0, a.length) - plain) < 1e-12);
  assert.equal(pairwiseSum(a, 0, 5), a[0] + a[1] + a[2] + a[3] + a[4]);
});

test('resized size rounds the longer side half up and crops centre', () => {
  assert.deepEqual(resizedSize(480, 640, 256), [256, 341]);
  assert.deepEqual(resizedSize(640, 480, 256), [341, 256]);
  assert.deepEqual(resizedSize(100, 100, 256), [256, 256]);
  assert.equal(defaultSpec(240).resizeShorter, 274);
});

test('an image already at the resize size is cropped exactly (no resampling error)', () => {
  const w = 256, h = 256;
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    rgba.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256, 255], i * 4);
  }
  const t = preprocessRgba(rgba, w, h);
  // Crop offset (256 - 224) / 2 = 16 in both axes; channel 0 of pixel (y, x) is at y*224 + x.
  for (const [y, x] of [[0, 0], [5, 100], [223, 223]]) {
    const src = ((y + 16) * w + (x + 16)) * 4;
    assert.equal(t[y * 224 + x], Math.fround(rgba[src] / 255));
    assert.equal(t[224 * 224 + y * 224 + x], Math.fround(rgba[src + 1] / 255));
  }
  const nhwc = preprocessRgba(rgba, w, h, defaultSpec(), 'NHWC');
  assert.equal(nhwc[(7 * 224 + 9) * 3 + 2], t[2 * 224 * 224 + 7 * 224 + 9]);
});

test('transparent pixels are composited over white, as the SDK does', () => {
  const rgba = new Uint8Array(300 * 300 * 4); // all (0, 0, 0, 0): fully transparent black
  const t = preprocessRgba(rgba, 300, 300);
  assert.ok(t.every((v) => v === 1), 'transparent -> white');
});

test('bad image buffers are refused with a message naming the problem', () => {
  assert.throws(() => preprocessRgba(new Uint8Array(10), 4, 4), /RGBA buffer holds 10 bytes, a 4x4 image needs 64/);
  assert.throws(() => preprocessRgba(new Uint8Array(0), 0, 4), /image has no pixels/);
});
