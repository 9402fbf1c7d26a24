// Two ways the JS core used to differ from the Python SDK and the JVM core (issue 19):
// a leading U+FEFF in an id, the space id or a metadata string was stripped by TextDecoder's
// default ignoreBOM=false; and k is clamped to the item count (no k-sized allocation).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from '../core/crc32.mjs';
import { parseJson } from '../core/json.mjs';
import { readIndex, unpackHeader, TRAILER_SIZE } from '../core/index.mjs';
import { bytes } from './vectors.mjs';

const BOM = [0xef, 0xbb, 0xbf];

/** index/float32.dpindex with the first 3 bytes of the space id, of id 0 and of item 0's title
 * replaced by a UTF-8 BOM (same lengths, so no section moves); the file CRC is recomputed. */
function withBoms() {
  const b = bytes('index/float32.dpindex').slice();
  const h = unpackHeader(b);
  b.set(BOM, h.sections.space_id.offset);
  b.set(BOM, h.sections.id_bytes.offset);
  const meta = h.sections.metadata;
  const text = new TextDecoder().decode(b.subarray(meta.offset, meta.offset + meta.length));
  const at = text.indexOf('"title":"') + '"title":"'.length; // ASCII before it: char index = byte index
  assert.ok(at > 8 && /^[ -~]{3}$/.test(text.slice(at, at + 3)));
  b.set(BOM, meta.offset + at);
  const body = h.fileSize - TRAILER_SIZE;
  new DataView(b.buffer).setUint32(body, crc32(b.subarray(0, body)), true);
  return { b, original: readIndex(bytes('index/float32.dpindex')) };
}

test('a leading U+FEFF is kept in ids, the space id and metadata strings (as Python and the JVM)', () => {
  const { b, original } = withBoms();
  const index = readIndex(b, { source: 'bom.dpindex' });
  assert.equal(index.ids[0], `\ufeff${original.ids[0].slice(3)}`);
  assert.equal(index.embeddingSpaceId, `\ufeff${original.embeddingSpaceId.slice(3)}`);
  assert.equal(index.items[0].title, `\ufeff${original.items[0].title.slice(3)}`);
  assert.equal(index.ids[0].length, original.ids[0].length - 2);
});

test('a metadata block or manifest that starts with a BOM is refused, not stripped', () => {
  assert.throws(() => parseJson(new Uint8Array([...BOM, 0x7b, 0x7d])), { name: 'JsonError', message: /byte-order mark/ });
  assert.throws(() => parseJson('\ufeff{}'), { name: 'JsonError' });
});

test('k far above the item count is clamped (no k-sized allocation), in search and searchProducts', () => {
  const index = readIndex(bytes('index/float32.dpindex'));
  const q = index.vector(3);
  for (const coarse of [true, false]) {
    index.useCoarseScan = coarse;
    const all = index.search(q, index.size);
    assert.deepEqual(index.search(q, 100_000_000), all);
    assert.deepEqual(index.search(q, Number.MAX_SAFE_INTEGER), all);
    assert.equal(index.searchProducts(q, 100_000_000).length, new Set(index.ids).size);
  }
  const empty = readIndex(bytes('index/empty.dpindex'));
  assert.deepEqual(empty.search(new Float32Array(empty.dim).fill(1), 100_000_000), []);
});
