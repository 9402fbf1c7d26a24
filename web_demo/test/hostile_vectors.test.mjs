// tests/vectors/bad/expected.json: the one list of hostile files and expected errors that the
// Python SDK and the Java, Swift and JS cores all check (see tests/vectors/make_bad_vectors.py).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readIndex } from '../core/index.mjs';
import { loadManifest } from '../core/manifest.mjs';
import { bytes, json } from './vectors.mjs';

const expected = json('bad/expected.json');
const schema = json('../../export/manifest.schema.json');

for (const [file, want] of Object.entries(expected.index)) {
  test(`index bad/${file}: ${want.valid ? 'accepted' : want.kind}`, () => {
    const source = `bad/${file}`;
    if (want.valid) {
      const index = readIndex(bytes(source), { source });
      const ref = readIndex(bytes(want.same_results_as));
      assert.equal(index.size, want.count);
      assert.equal(index.dim, want.dim);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(index.search(ref.vector(i), 5).map((h) => h.position), ref.search(ref.vector(i), 5).map((h) => h.position));
      }
      return;
    }
    assert.throws(() => readIndex(bytes(source), { source }), (e) => {
      assert.equal(e.name, want.kind, e.message);
      assert.ok(e.problem.startsWith(want.problem), `${e.problem} does not start with ${want.problem}`);
      assert.equal(e.message, `${source}: ${e.problem}`);
      return true;
    });
  });
}

for (const [file, want] of Object.entries(expected.manifest)) {
  test(`manifest bad/${file}: ${want.valid ? 'accepted' : want.kind}`, () => {
    const source = `bad/${file}`;
    // The bytes, as app.mjs fetches them: readFileSync(..., 'utf8') would turn invalid UTF-8
    // into U+FFFD instead of letting the JSON grammar refuse it.
    const text = bytes(source);
    if (want.valid) {
      assert.equal(loadManifest(text, source, schema).embeddingDim, 16);
      return;
    }
    assert.throws(() => loadManifest(text, source, schema), (e) => {
      assert.equal(e.name, want.kind, e.message);
      assert.ok(e.message.startsWith(`${source}: `) && e.message.includes(want.mentions), e.message);
      return true;
    });
  });
}
