// tests/vectors/json/: the shared JSON grammar corpus (docs/json.md). The Python SDK, the JVM and
// Swift cores read the same files and must reach the same accept/refuse verdict for each.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { GRAMMAR_VERSION, JsonError, MAX_JSON_DEPTH, parseJson } from '../core/json.mjs';
import { bytes, json, path } from './vectors.mjs';

const expected = json('json/expected.json');

test('corpus: every file is listed, grammar version and depth agree', () => {
  const present = readdirSync(path('json')).filter((f) => f !== 'expected.json').sort();
  assert.deepEqual(present, Object.keys(expected.cases).sort());
  assert.equal(expected.grammar_version, GRAMMAR_VERSION);
  assert.equal(expected.max_depth, MAX_JSON_DEPTH);
});

for (const [file, want] of Object.entries(expected.cases)) {
  test(`json/${file}: ${want.verdict}`, () => {
    const data = bytes(`json/${file}`);
    if (want.verdict === 'accept') {
      parseJson(data);
    } else {
      assert.throws(() => parseJson(data), (e) => {
        assert.ok(e instanceof JsonError, `${e.name}: ${e.message}`);
        assert.ok(!e.message.includes('\n'), e.message);
        return true;
      });
    }
  });
}

test('values: underflow reads as 0, pairs join, a BOM inside a string is kept', () => {
  assert.deepEqual(parseJson('[1e-400, -0, 2.5]'), [0, -0, 2.5]);
  assert.equal(parseJson('"\\ud83d\\ude00"'), '\u{1f600}');
  assert.equal(parseJson(new Uint8Array([0x22, 0xef, 0xbb, 0xbf, 0x22])), '\ufeff');
  assert.deepEqual(parseJson('{"__proto__": 1}'), JSON.parse('{"__proto__": 1}'));
});

test('strings with raw lone surrogates (never from UTF-8 bytes) are refused too', () => {
  assert.throws(() => parseJson('["\ud800"]'), JsonError);
  assert.throws(() => parseJson('["\udc00x"]'), JsonError);
  assert.deepEqual(parseJson('["\ud83d\ude00"]'), ['\u{1f600}']);
});

test('deep nesting is refused without a stack overflow', () => {
  assert.throws(() => parseJson('['.repeat(1_000_000)), { name: 'JsonError', message: /nested deeper than 64 levels/ });
  assert.throws(() => parseJson('{"a":'.repeat(200_000)), { name: 'JsonError', message: /nested deeper than 64 levels/ });
});
