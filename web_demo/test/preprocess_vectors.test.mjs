// tests/vectors/images/: the resize + crop from the decoded pixels equals the SDK's tensor, and
// so does the RGBA path the page uses, fed by a PNG decoder (the browser's, in the e2e test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preprocessRgb, preprocessRgba, resizedSize, resizeWeights, specFromManifest } from '../core/preprocess.mjs';
import { decodePng } from './png.mjs';
import { f32, json, maxAbsDiff, path } from './vectors.mjs';

const expected = json('images/expected.json');
const spec = specFromManifest(expected.spec);

test('the spec is 32 from 37 and the worked resize example matches', () => {
  assert.equal(spec.inputSize, 32);
  assert.equal(spec.resizeShorter, 37);
  const ex = expected.resize_weights_example;
  const t = resizeWeights(ex.in, ex.out, 0, ex.first_outputs);
  for (let o = 0; o < ex.first_outputs; o++) {
    assert.deepEqual(Array.from(t.index.subarray(o * t.taps, o * t.taps + ex.indices[o].length)), ex.indices[o]);
    assert.deepEqual(Array.from(t.weight.subarray(o * t.taps, o * t.taps + ex.weights[o].length)), ex.weights[o]);
  }
});

for (const im of expected.images) {
  test(`${im.file}: tensor from the decoded pixels matches the SDK (${im.description})`, () => {
    const [h, w] = im.decoded_shape;
    assert.deepEqual(resizedSize(h, w, spec.resizeShorter), im.resized_size);
    const got = preprocessRgb(Float64Array.from(f32(`images/${im.decoded_file}`)), w, h, spec, 'NCHW');
    const d = maxAbsDiff(got, f32(`images/${im.expected_file}`));
    assert.ok(d <= expected.tensor_atol, `max |diff| ${d}`);
    const nhwc = preprocessRgb(Float64Array.from(f32(`images/${im.decoded_file}`)), w, h, spec, 'NHWC');
    const s = spec.inputSize;
    for (let c = 0; c < 3; c++) for (let i = 0; i < s * s; i += 17) assert.equal(nhwc[i * 3 + c], got[c * s * s + i]);
  });
}

for (const im of expected.images.filter((x) => x.file.endsWith('.png') && ['RGB', 'RGBA', 'P', 'L'].includes(x.pillow_mode))) {
  test(`${im.file}: RGBA path from the PNG file matches the SDK`, () => {
    const { width, height, data } = decodePng(path(`images/${im.file}`));
    const got = preprocessRgba(data, width, height, spec, 'NCHW');
    const d = maxAbsDiff(got, f32(`images/${im.expected_file}`));
    assert.ok(d <= im.full_pipeline_atol, `max |diff| ${d}`);
  });
}
