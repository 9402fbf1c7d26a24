// Resize-shorter-side + centre-crop + [0, 1] float conversion on RGBA pixels (ImageData.data).
//
// A line-for-line port of sdk_python/preprocessing.py (resize_weights, _resample_axis,
// resized_size, resize_and_crop) in float64, including numpy's summation order where it
// matters, so the Float32Array matches the Python SDK bit for bit (pinned by tests/vectors/).
// The filter is a separable triangle with half-pixel centres whose support widens by the
// shrink factor (antialiasing); docs/preprocessing.md is the specification.

export const SPEC_VERSION = 1;
export const RESIZE_ALGORITHM = 'triangle-antialias-half-pixel-v1';

/** The default contract: 224 px input, shorter side to 256, white background. */
export function defaultSpec(inputSize = 224) {
  return {
    inputSize,
    resizeShorter: Math.floor((inputSize * 256) / 224 + 0.5),
    alphaBackground: [255, 255, 255],
  };
}

/**
 * Reads the manifest's `preprocessing` object. Refuses a newer spec version or another resize
 * algorithm like the Python SDK, because either would silently change the tensor.
 */
export function specFromManifest(d) {
  const version = d.version ?? SPEC_VERSION;
  if (version > SPEC_VERSION) {
    throw new Error(`preprocessing spec version ${version} is newer than this SDK understands (${SPEC_VERSION}); upgrade deepproduct`);
  }
  const algo = d.resize_algorithm ?? RESIZE_ALGORITHM;
  if (algo !== RESIZE_ALGORITHM) throw new Error(`unknown resize algorithm '${algo}'`);
  if ((d.colour_order ?? 'RGB') !== 'RGB') throw new Error(`unsupported colour_order '${d.colour_order}' (only RGB)`);
  const spec = defaultSpec(d.input_size ?? 224);
  if (d.resize_shorter !== undefined) spec.resizeShorter = d.resize_shorter;
  if (d.alpha_background !== undefined) spec.alphaBackground = d.alpha_background.slice(0, 3);
  if (!(spec.inputSize > 0 && spec.resizeShorter >= spec.inputSize)) {
    throw new Error(`preprocessing spec needs 0 < input_size <= resize_shorter, got ${spec.inputSize}, ${spec.resizeShorter}`);
  }
  return spec;
}

/** numpy's pairwise_sum for float64 (what `w.sum(axis=1)` uses; differs from a plain sum at >= 8 terms). */
export function pairwiseSum(a, start, n) {
  if (n < 8) {
    let res = 0.0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j];
    let i;
    for (i = 8; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/**
 * Filter taps for output samples offset..offset+count of an inSize -> outSize resize: sample o is
 * centred on x = (o + 0.5) * in / out; with support s = max(in / out, 1) input pixel i gets weight
 * max(0, 1 - |i + 0.5 - x| / s); taps outside the image get zero; rows renormalised to sum to one.
 */
export function resizeWeights(inSize, outSize, offset, count) {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1.0);
  const taps = Math.ceil(2 * support) + 2;
  const index = new Int32Array(count * taps);
  const weight = new Float64Array(count * taps);
  const row = new Float64Array(taps);
  for (let o = 0; o < count; o++) {
    const centre = (offset + o + 0.5) * scale;
    const first = Math.floor(centre - support);
    for (let k = 0; k < taps; k++) {
      const i = first + k;
      const w = 1.0 - Math.abs(i + 0.5 - centre) / support;
      row[k] = i >= 0 && i < inSize && w > 0 ? w : 0.0;
      index[o * taps + k] = Math.min(Math.max(i, 0), inSize - 1);
    }
    const sum = pairwiseSum(row, 0, taps);
    for (let k = 0; k < taps; k++) weight[o * taps + k] = row[k] / sum;
  }
  return { count, taps, index, weight };
}

/** [height, width] after resizing the shorter side to `shorter`; the longer side rounds half up. */
export function resizedSize(height, width, shorter) {
  if (height <= width) return [shorter, Math.max(shorter, Math.floor((width * shorter) / height + 0.5))];
  return [Math.max(shorter, Math.floor((height * shorter) / width + 0.5)), shorter];
}

/**
 * The model input for one decoded image: Float32Array of 3*S*S RGB values in [0, 1], layout
 * 'NCHW' (ONNX) or 'NHWC' (TFLite). Opaque images (every alpha 255) are resampled on their 8-bit
 * values and divided by 255 at the end, as the SDK does for 8-bit sources; images with
 * transparency are first composited over the background in [0, 1] (the SDK's RGBA branch).
 * @param {Uint8Array|Uint8ClampedArray} rgba width*height*4 bytes, row-major, not premultiplied
 */
export function preprocessRgba(rgba, width, height, spec = defaultSpec(), layout = 'NCHW') {
  checkSize(width, height, rgba.length, 4, `RGBA buffer holds ${rgba.length} bytes`);
  let opaque = true;
  for (let i = 3; i < width * height * 4 && opaque; i += 4) opaque = rgba[i] === 255;
  const bg = spec.alphaBackground.map((v) => v / 255.0);
  const row = opaque
    ? (y, colLo, cols) => rawRow(rgba, width, y, colLo, cols)
    : (y, colLo, cols) => compositedRow(rgba, width, y, colLo, cols, bg);
  return resizeAndCrop(row, width, height, spec, layout, opaque ? 255.0 : 1.0);
}

/**
 * The same for an image already converted to float RGB in [0, 1] (16-bit sources, or the decoded
 * pixels of the test vectors): width*height*3 values, row-major, interleaved.
 */
export function preprocessRgb(rgb, width, height, spec = defaultSpec(), layout = 'NCHW') {
  checkSize(width, height, rgb.length, 3, `RGB buffer holds ${rgb.length} values`);
  const row = (y, colLo, cols) => Float64Array.from(rgb.subarray
    ? rgb.subarray((y * width + colLo) * 3, (y * width + colLo + cols) * 3)
    : rgb.slice((y * width + colLo) * 3, (y * width + colLo + cols) * 3));
  return resizeAndCrop(row, width, height, spec, layout, 1.0);
}

function checkSize(width, height, have, perPixel, what) {
  if (!(width > 0 && height > 0)) throw new Error(`image has no pixels (${width}x${height})`);
  if (have < width * height * perPixel) throw new Error(`${what}, a ${width}x${height} image needs ${width * height * perPixel}`);
}

/**
 * resize_and_crop: vertical pass over the needed columns, then horizontal pass, then / divisor
 * (255 for raw 8-bit samples), float32 cast and clip to [0, 1].
 * @param {(y:number, colLo:number, cols:number) => Float64Array} sourceRow interleaved RGB of one row
 */
function resizeAndCrop(sourceRow, width, height, spec, layout, divisor) {
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new Error(`unknown layout '${layout}'; expected NCHW or NHWC`);
  const size = spec.inputSize;
  const [newH, newW] = resizedSize(height, width, spec.resizeShorter);
  const top = Math.floor((newH - size) / 2);
  const left = Math.floor((newW - size) / 2);
  const ty = resizeWeights(height, newH, top, size);
  const tx = resizeWeights(width, newW, left, size);

  // Only the columns the horizontal pass reads need the vertical pass (columns are independent).
  let colLo = width;
  let colHi = -1;
  for (const v of tx.index) {
    if (v < colLo) colLo = v;
    if (v > colHi) colHi = v;
  }
  const cols = colHi - colLo + 1;
  const rows = new Array(height);

  const tmp = [0, 1, 2].map(() => new Float64Array(size * cols));
  for (let y = 0; y < size; y++) {
    for (let k = 0; k < ty.taps; k++) {
      const srcY = ty.index[y * ty.taps + k];
      const w = ty.weight[y * ty.taps + k];
      let src = rows[srcY];
      if (src === undefined) {
        src = sourceRow(srcY, colLo, cols);
        rows[srcY] = src;
      }
      for (let c = 0; c < 3; c++) {
        const t = tmp[c];
        const base = y * cols;
        for (let x = 0; x < cols; x++) {
          const term = src[x * 3 + c] * w;
          // k == 0 assigns (numpy's `out = term`), later taps accumulate in tap order.
          t[base + x] = k === 0 ? term : t[base + x] + term;
        }
      }
    }
  }
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    const t = tmp[c];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let acc = 0.0;
        for (let k = 0; k < tx.taps; k++) {
          const term = t[y * cols + tx.index[x * tx.taps + k] - colLo] * tx.weight[x * tx.taps + k];
          acc = k === 0 ? term : acc + term;
        }
        // float32 cast, then clip to [0, 1] (astype(float32) + np.clip).
        let f = Math.fround(divisor === 1.0 ? acc : acc / divisor);
        f = f < 0 ? 0 : f > 1 ? 1 : f;
        out[layout === 'NCHW' ? (c * size + y) * size + x : (y * size + x) * 3 + c] = f;
      }
    }
  }
  return out;
}

/** Raw 8-bit samples 0..255 of an opaque row (divided by 255 after resampling). */
function rawRow(rgba, width, y, colLo, cols) {
  const row = new Float64Array(cols * 3);
  for (let x = 0; x < cols; x++) {
    const p = (y * width + colLo + x) * 4;
    row[x * 3] = rgba[p];
    row[x * 3 + 1] = rgba[p + 1];
    row[x * 3 + 2] = rgba[p + 2];
  }
  return row;
}

/** A row with transparency: [0, 1] values composited over the background, as the SDK's RGBA branch. */
function compositedRow(rgba, width, y, colLo, cols, bg) {
  const row = new Float64Array(cols * 3);
  for (let x = 0; x < cols; x++) {
    const p = (y * width + colLo + x) * 4;
    // rgba / 255 * alpha + background * (1 - alpha) for every pixel, opaque ones included.
    const al = rgba[p + 3] / 255.0;
    row[x * 3] = (rgba[p] / 255.0) * al + bg[0] * (1.0 - al);
    row[x * 3 + 1] = (rgba[p + 1] / 255.0) * al + bg[1] * (1.0 - al);
    row[x * 3 + 2] = (rgba[p + 2] / 255.0) * al + bg[2] * (1.0 - al);
  }
  return row;
}
