package com.deepproduct.core;

/**
 * Resize-shorter-side + centre-crop + [0, 1] float conversion on a decoded ARGB buffer.
 *
 * <p>A line-for-line port of {@code sdk_python/preprocessing.py} ({@code resize_weights},
 * {@code _resample_axis}, {@code resized_size}, {@code resize_and_crop}) in double precision,
 * including numpy's summation order where it matters, so that the float32 tensor matches the
 * Python SDK's bit for bit (pinned by {@code tests/vectors/}). The filter is a separable triangle
 * with half-pixel centres whose support widens by the shrink factor (antialiasing).
 *
 * <p>Input: non-premultiplied ARGB ints as returned by Android's {@code Bitmap.getPixels}, already
 * EXIF-rotated by the platform decoder. Alpha is composited over {@link PreprocessingSpec#alphaBackground}.
 */
public final class Preprocessor {
    /** Output tensor layout: NCHW for ONNX, NHWC for TFLite. */
    public enum Layout { NCHW, NHWC }

    private Preprocessor() {
    }

    /** Filter taps for output samples {@code offset .. offset+count} of an {@code inSize -> outSize} resize. */
    public static final class Taps {
        public final int count;
        public final int taps;
        /** {@code count * taps} input indices, clipped into the image. */
        public final int[] index;
        /** {@code count * taps} weights; each row sums to one. */
        public final double[] weight;

        Taps(int count, int taps, int[] index, double[] weight) {
            this.count = count;
            this.taps = taps;
            this.index = index;
            this.weight = weight;
        }
    }

    /**
     * Output sample o is centred on x = (o + 0.5) * in / out; with support s = max(in / out, 1)
     * input pixel i gets weight max(0, 1 - |i + 0.5 - x| / s); taps outside the image get weight
     * zero and each row is renormalised to sum to one.
     */
    public static Taps resizeWeights(int inSize, int outSize, int offset, int count) {
        double scale = (double) inSize / (double) outSize;
        double support = Math.max(scale, 1.0);
        int taps = (int) Math.ceil(2 * support) + 2;
        int[] index = new int[count * taps];
        double[] weight = new double[count * taps];
        double[] row = new double[taps];
        for (int o = 0; o < count; o++) {
            double centre = ((double) (offset + o) + 0.5) * scale;
            long first = (long) Math.floor(centre - support);
            for (int k = 0; k < taps; k++) {
                long i = first + k;
                double w = 1.0 - Math.abs(((double) i + 0.5) - centre) / support;
                row[k] = (i >= 0 && i < inSize && w > 0) ? w : 0.0;
                index[o * taps + k] = (int) Math.min(Math.max(i, 0), inSize - 1);
            }
            double sum = pairwiseSum(row, 0, taps);
            for (int k = 0; k < taps; k++) {
                weight[o * taps + k] = row[k] / sum;
            }
        }
        return new Taps(count, taps, index, weight);
    }

    /**
     * numpy's {@code pairwise_sum} for float64 (8 accumulators, blocks of 128), which is what
     * {@code w.sum(axis=1)} uses; a plain left-to-right sum differs in the last bit for rows of
     * 8 or more taps (strong shrinks).
     */
    static double pairwiseSum(double[] a, int start, int n) {
        if (n < 8) {
            double res = 0.0;
            for (int i = 0; i < n; i++) {
                res += a[start + i];
            }
            return res;
        } else if (n <= 128) {
            double[] r = new double[8];
            for (int j = 0; j < 8; j++) {
                r[j] = a[start + j];
            }
            int i;
            for (i = 8; i < n - (n % 8); i += 8) {
                for (int j = 0; j < 8; j++) {
                    r[j] += a[start + i + j];
                }
            }
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) {
                res += a[start + i];
            }
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
    }

    /** {height, width} after resizing the shorter side to {@code shorter}; the longer side rounds half up. */
    public static int[] resizedSize(int height, int width, int shorter) {
        if (height <= width) {
            long w = (long) Math.floor((double) ((long) width * shorter) / (double) height + 0.5);
            return new int[] {shorter, (int) Math.max(shorter, w)};
        }
        long h = (long) Math.floor((double) ((long) height * shorter) / (double) width + 0.5);
        return new int[] {(int) Math.max(shorter, h), shorter};
    }

    /**
     * The model input for one decoded image: float32 RGB in [0, 1], {@code 3*S*S} values in NCHW or NHWC order.
     *
     * <p>Opaque images (every alpha 255) are resampled on their 8-bit values and divided by 255 at the
     * end, as the SDK does for 8-bit sources; images with transparency are first composited over the
     * background in [0, 1] (the SDK's RGBA branch). Both agree with the spec to ~1e-16.
     *
     * @param argb {@code width * height} pixels, row-major, 0xAARRGGBB, not premultiplied
     */
    public static float[] preprocess(int[] argb, int width, int height, PreprocessingSpec spec, Layout layout) {
        checkSize(width, height, argb.length, 1, "ARGB buffer holds " + argb.length + " pixels");
        boolean opaque = true;
        for (int i = 0; i < width * height && opaque; i++) {
            opaque = (argb[i] >>> 24) == 0xff;
        }
        final double[] bg = {spec.alphaBackground[0] / 255.0, spec.alphaBackground[1] / 255.0,
            spec.alphaBackground[2] / 255.0};
        final boolean raw = opaque;
        final int[] px = argb;
        final int w = width;
        RowSource rows = new RowSource() {
            @Override
            public double[] row(int y, int colLo, int cols) {
                return raw ? rawRow(px, w, y, colLo, cols) : compositedRow(px, w, y, colLo, cols, bg);
            }
        };
        return resizeAndCrop(rows, width, height, spec, layout, raw ? 255.0 : 1.0);
    }

    /**
     * The same for an image already converted to float RGB in [0, 1] (e.g. 16-bit grey sources, or
     * the decoded pixels of the test vectors): {@code width * height * 3} values, row-major, interleaved.
     */
    public static float[] preprocessRgb(final double[] rgb, final int width, int height, PreprocessingSpec spec,
                                        Layout layout) {
        checkSize(width, height, rgb.length, 3, "RGB buffer holds " + rgb.length + " values");
        RowSource rows = new RowSource() {
            @Override
            public double[] row(int y, int colLo, int cols) {
                double[] r = new double[cols * 3];
                System.arraycopy(rgb, (y * width + colLo) * 3, r, 0, cols * 3);
                return r;
            }
        };
        return resizeAndCrop(rows, width, height, spec, layout, 1.0);
    }

    private static void checkSize(int width, int height, int have, int perPixel, String what) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image has no pixels (" + width + "x" + height + ")");
        }
        if (have < (long) width * height * perPixel) {
            throw new IllegalArgumentException(what + ", a " + width + "x" + height + " image needs "
                    + ((long) width * height * perPixel));
        }
    }

    /** Row y's columns {@code colLo .. colLo+cols} as interleaved RGB doubles. */
    interface RowSource {
        double[] row(int y, int colLo, int cols);
    }

    /**
     * resize_and_crop: vertical pass over the needed columns, then horizontal pass, then
     * {@code / divisor} (255 for raw 8-bit samples), float32 cast and clip to [0, 1].
     */
    static float[] resizeAndCrop(RowSource source, int width, int height, PreprocessingSpec spec, Layout layout,
                                 double divisor) {
        int size = spec.inputSize;
        int[] resized = resizedSize(height, width, spec.resizeShorter);
        int top = (resized[0] - size) / 2;
        int left = (resized[1] - size) / 2;
        Taps ty = resizeWeights(height, resized[0], top, size);
        Taps tx = resizeWeights(width, resized[1], left, size);

        // Only the columns the horizontal pass reads need the vertical pass (each column is independent).
        int colLo = width;
        int colHi = -1;
        for (int v : tx.index) {
            colLo = Math.min(colLo, v);
            colHi = Math.max(colHi, v);
        }
        int cols = colHi - colLo + 1;
        double[][] rowCache = new double[height][];
        // Vertical pass: tmp[c][y][x - colLo]
        double[][] tmp = new double[3][size * cols];
        for (int y = 0; y < size; y++) {
            for (int k = 0; k < ty.taps; k++) {
                int srcY = ty.index[y * ty.taps + k];
                double w = ty.weight[y * ty.taps + k];
                double[] src = rowCache[srcY];
                if (src == null) {
                    src = source.row(srcY, colLo, cols);
                    rowCache[srcY] = src;
                }
                for (int c = 0; c < 3; c++) {
                    double[] t = tmp[c];
                    int base = y * cols;
                    for (int x = 0; x < cols; x++) {
                        double term = src[x * 3 + c] * w;
                        // k == 0 assigns (numpy's "out = term"), later taps accumulate in tap order.
                        t[base + x] = k == 0 ? term : t[base + x] + term;
                    }
                }
            }
        }
        // Horizontal pass, then float32 cast and clip to [0, 1] (as astype(float32) + np.clip).
        float[] out = new float[3 * size * size];
        for (int c = 0; c < 3; c++) {
            double[] t = tmp[c];
            for (int y = 0; y < size; y++) {
                for (int x = 0; x < size; x++) {
                    double acc = 0.0;
                    for (int k = 0; k < tx.taps; k++) {
                        double term = t[y * cols + tx.index[x * tx.taps + k] - colLo] * tx.weight[x * tx.taps + k];
                        acc = k == 0 ? term : acc + term;
                    }
                    float f = (float) (divisor == 1.0 ? acc : acc / divisor);
                    f = f < 0f ? 0f : (f > 1f ? 1f : f);
                    int pos = layout == Layout.NCHW ? (c * size + y) * size + x : (y * size + x) * 3 + c;
                    out[pos] = f;
                }
            }
        }
        return out;
    }

    /** Raw 8-bit samples 0..255 of an opaque row (divided by 255 after resampling). */
    private static double[] rawRow(int[] argb, int width, int y, int colLo, int cols) {
        double[] row = new double[cols * 3];
        for (int x = 0; x < cols; x++) {
            int p = argb[y * width + colLo + x];
            row[x * 3] = (p >> 16) & 0xff;
            row[x * 3 + 1] = (p >> 8) & 0xff;
            row[x * 3 + 2] = p & 0xff;
        }
        return row;
    }

    /** A row with transparency: [0, 1] values composited over the background, as the SDK's RGBA branch. */
    private static double[] compositedRow(int[] argb, int width, int y, int colLo, int cols, double[] bg) {
        double[] row = new double[cols * 3];
        for (int x = 0; x < cols; x++) {
            int p = argb[y * width + colLo + x];
            int a = (p >>> 24) & 0xff;
            double r = ((p >> 16) & 0xff) / 255.0;
            double g = ((p >> 8) & 0xff) / 255.0;
            double b = (p & 0xff) / 255.0;
            // rgba / 255 * alpha + background * (1 - alpha) for every pixel, opaque ones included.
            double al = a / 255.0;
            r = r * al + bg[0] * (1.0 - al);
            g = g * al + bg[1] * (1.0 - al);
            b = b * al + bg[2] * (1.0 - al);
            row[x * 3] = r;
            row[x * 3 + 1] = g;
            row[x * 3 + 2] = b;
        }
        return row;
    }
}
