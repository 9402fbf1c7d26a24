import Foundation

/// Resize-shorter-side + centre-crop + [0, 1] float conversion on decoded RGBA bytes.
///
/// A line-for-line port of `sdk_python/preprocessing.py` in Double precision, including numpy's
/// summation order where it matters, so the Float tensor matches the Python SDK bit for bit
/// (pinned by `tests/vectors/`). In the app, Vision scales the camera image itself (the model has
/// an image input); this port is what the tests pin and what a non-Vision caller uses.
public enum Preprocessor {
    public enum Layout { case nchw, nhwc }

    /// Filter taps for output samples `offset ..< offset+count` of an `inSize -> outSize` resize.
    public struct Taps {
        public let count: Int
        public let taps: Int
        public let index: [Int]
        public let weight: [Double]
    }

    /// Sample o is centred on x = (o + 0.5) * in / out; with support s = max(in / out, 1) input pixel
    /// i gets weight max(0, 1 - |i + 0.5 - x| / s); taps outside the image get zero; rows sum to one.
    public static func resizeWeights(inSize: Int, outSize: Int, offset: Int, count: Int) -> Taps {
        let scale = Double(inSize) / Double(outSize)
        let support = max(scale, 1.0)
        let taps = Int((2 * support).rounded(.up)) + 2
        var index = [Int](repeating: 0, count: count * taps)
        var weight = [Double](repeating: 0, count: count * taps)
        var row = [Double](repeating: 0, count: taps)
        for o in 0..<count {
            let centre = (Double(offset + o) + 0.5) * scale
            let first = Int((centre - support).rounded(.down))
            for k in 0..<taps {
                let i = first + k
                let w = 1.0 - abs(Double(i) + 0.5 - centre) / support
                row[k] = (i >= 0 && i < inSize && w > 0) ? w : 0.0
                index[o * taps + k] = min(max(i, 0), inSize - 1)
            }
            let sum = pairwiseSum(row, 0, taps)
            for k in 0..<taps {
                weight[o * taps + k] = row[k] / sum
            }
        }
        return Taps(count: count, taps: taps, index: index, weight: weight)
    }

    /// numpy's `pairwise_sum` for float64 (8 accumulators, blocks of 128): what `w.sum(axis=1)`
    /// uses; a plain left-to-right sum differs in the last bit for rows of 8 or more taps.
    static func pairwiseSum(_ a: [Double], _ start: Int, _ n: Int) -> Double {
        if n < 8 {
            var res = 0.0
            for i in 0..<n {
                res += a[start + i]
            }
            return res
        } else if n <= 128 {
            var r = [Double](repeating: 0, count: 8)
            for j in 0..<8 {
                r[j] = a[start + j]
            }
            var i = 8
            while i < n - (n % 8) {
                for j in 0..<8 {
                    r[j] += a[start + i + j]
                }
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n {
                res += a[start + i]
                i += 1
            }
            return res
        }
        var n2 = n / 2
        n2 -= n2 % 8
        return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2)
    }

    /// (height, width) after resizing the shorter side to `shorter`; the longer side rounds half up.
    public static func resizedSize(height: Int, width: Int, shorter: Int) -> (Int, Int) {
        if height <= width {
            let w = Int((Double(width * shorter) / Double(height) + 0.5).rounded(.down))
            return (shorter, max(shorter, w))
        }
        let h = Int((Double(height * shorter) / Double(width) + 0.5).rounded(.down))
        return (max(shorter, h), shorter)
    }

    /// The model input for one decoded image: 3*S*S Floats, RGB in [0, 1], NCHW or NHWC.
    /// Opaque images (every alpha 255) are resampled on their 8-bit values and divided by 255 at the
    /// end, as the SDK does for 8-bit sources; images with transparency are first composited over
    /// the background in [0, 1] (the SDK's RGBA branch).
    /// - Parameter rgba: width*height*4 bytes, row-major, not premultiplied, EXIF already applied.
    public static func preprocess(rgba: [UInt8], width: Int, height: Int,
                                  spec: PreprocessingSpec, layout: Layout = .nchw) throws -> [Float] {
        try checkSize(width, height, have: rgba.count, perPixel: 4, what: "RGBA buffer holds \(rgba.count) bytes")
        var opaque = true
        var i = 3
        while opaque && i < width * height * 4 {
            opaque = rgba[i] == 255
            i += 4
        }
        let bg = spec.alphaBackground.map { Double($0) / 255.0 }
        let isOpaque = opaque
        return resizeAndCrop(width: width, height: height, spec: spec, layout: layout, divisor: isOpaque ? 255.0 : 1.0) { y, colLo, cols in
            isOpaque ? rawRow(rgba, width: width, y: y, colLo: colLo, cols: cols)
                : compositedRow(rgba, width: width, y: y, colLo: colLo, cols: cols, bg: bg)
        }
    }

    /// The same for an image already converted to Double RGB in [0, 1] (16-bit sources, or the
    /// decoded pixels of the test vectors): width*height*3 values, row-major, interleaved.
    public static func preprocess(rgb: [Double], width: Int, height: Int,
                                  spec: PreprocessingSpec, layout: Layout = .nchw) throws -> [Float] {
        try checkSize(width, height, have: rgb.count, perPixel: 3, what: "RGB buffer holds \(rgb.count) values")
        return resizeAndCrop(width: width, height: height, spec: spec, layout: layout, divisor: 1.0) { y, colLo, cols in
            Array(rgb[((y * width + colLo) * 3)..<((y * width + colLo + cols) * 3)])
        }
    }

    private static func checkSize(_ width: Int, _ height: Int, have: Int, perPixel: Int, what: String) throws {
        guard width > 0, height > 0 else {
            throw DeepProductError.invalidImage("image has no pixels (\(width)x\(height))")
        }
        guard have >= width * height * perPixel else {
            throw DeepProductError.invalidImage("\(what), a \(width)x\(height) image needs \(width * height * perPixel)")
        }
    }

    /// resize_and_crop: vertical pass over the needed columns, then horizontal pass, then / divisor
    /// (255 for raw 8-bit samples), Float cast and clip to [0, 1].
    static func resizeAndCrop(width: Int, height: Int, spec: PreprocessingSpec, layout: Layout, divisor: Double,
                              sourceRow: (Int, Int, Int) -> [Double]) -> [Float] {
        let size = spec.inputSize
        let (newH, newW) = resizedSize(height: height, width: width, shorter: spec.resizeShorter)
        let top = (newH - size) / 2
        let left = (newW - size) / 2
        let ty = resizeWeights(inSize: height, outSize: newH, offset: top, count: size)
        let tx = resizeWeights(inSize: width, outSize: newW, offset: left, count: size)

        // Only the columns the horizontal pass reads need the vertical pass (columns are independent).
        let colLo = tx.index.min() ?? 0
        let colHi = tx.index.max() ?? 0
        let cols = colHi - colLo + 1
        var rows = [Int: [Double]]()

        var tmp = [[Double]](repeating: [Double](repeating: 0, count: size * cols), count: 3)
        for y in 0..<size {
            for k in 0..<ty.taps {
                let srcY = ty.index[y * ty.taps + k]
                let w = ty.weight[y * ty.taps + k]
                let src: [Double]
                if let cached = rows[srcY] {
                    src = cached
                } else {
                    src = sourceRow(srcY, colLo, cols)
                    rows[srcY] = src
                }
                for c in 0..<3 {
                    let base = y * cols
                    for x in 0..<cols {
                        let term = src[x * 3 + c] * w
                        // k == 0 assigns (numpy's `out = term`), later taps accumulate in tap order.
                        tmp[c][base + x] = k == 0 ? term : tmp[c][base + x] + term
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: 3 * size * size)
        for c in 0..<3 {
            for y in 0..<size {
                for x in 0..<size {
                    var acc = 0.0
                    for k in 0..<tx.taps {
                        let term = tmp[c][y * cols + tx.index[x * tx.taps + k] - colLo] * tx.weight[x * tx.taps + k]
                        acc = k == 0 ? term : acc + term
                    }
                    // Float cast, then clip to [0, 1] (astype(float32) + np.clip).
                    let f = min(max(Float(divisor == 1.0 ? acc : acc / divisor), 0), 1)
                    let pos = layout == .nchw ? (c * size + y) * size + x : (y * size + x) * 3 + c
                    out[pos] = f
                }
            }
        }
        return out
    }

    /// Raw 8-bit samples 0...255 of an opaque row (divided by 255 after resampling).
    private static func rawRow(_ rgba: [UInt8], width: Int, y: Int, colLo: Int, cols: Int) -> [Double] {
        var row = [Double](repeating: 0, count: cols * 3)
        for x in 0..<cols {
            let p = (y * width + colLo + x) * 4
            row[x * 3] = Double(rgba[p])
            row[x * 3 + 1] = Double(rgba[p + 1])
            row[x * 3 + 2] = Double(rgba[p + 2])
        }
        return row
    }

    /// A row with transparency: [0, 1] values composited over the background, as the SDK's RGBA branch.
    private static func compositedRow(_ rgba: [UInt8], width: Int, y: Int, colLo: Int, cols: Int, bg: [Double]) -> [Double] {
        var row = [Double](repeating: 0, count: cols * 3)
        for x in 0..<cols {
            let p = (y * width + colLo + x) * 4
            // rgba / 255 * alpha + background * (1 - alpha) for every pixel, opaque ones included.
            let al = Double(rgba[p + 3]) / 255.0
            for c in 0..<3 {
                row[x * 3 + c] = (Double(rgba[p + c]) / 255.0) * al + bg[c] * (1.0 - al)
            }
        }
        return row
    }
}
