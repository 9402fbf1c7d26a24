@testable import DeepProductCore
import XCTest

/// tests/vectors/images/expected.json: the resize + crop from the decoded pixels equals the SDK's
/// tensor (tensor_atol), NHWC is the transpose, and the worked resize example matches.
final class PreprocessorTests: XCTestCase {
    func testTensorsFromDecodedPixelsMatchTheSdk() throws {
        let expected = try Vectors.json("images/expected.json")
        let spec = try PreprocessingSpec(manifestPreprocessing: try XCTUnwrap(expected["spec"] as? [String: Any]))
        XCTAssertEqual(spec.inputSize, 32)
        XCTAssertEqual(spec.resizeShorter, 37)
        let atol = try XCTUnwrap(expected["tensor_atol"] as? NSNumber).doubleValue
        let images = expected["images"] as? [[String: Any]] ?? []
        XCTAssertEqual(images.count, 10)
        for image in images {
            let name = image["file"] as? String ?? "?"
            let shape = Vectors.ints(image["decoded_shape"])
            XCTAssertEqual(Preprocessor.resizedSize(height: shape[0], width: shape[1], shorter: spec.resizeShorter).0,
                           Vectors.ints(image["resized_size"])[0], name)
            let decoded = try Vectors.f32("images/\(image["decoded_file"] as? String ?? "")").map { Double($0) }
            let want = try Vectors.f32("images/\(image["expected_file"] as? String ?? "")")
            let got = try Preprocessor.preprocess(rgb: decoded, width: shape[1], height: shape[0], spec: spec, layout: .nchw)
            XCTAssertLessThanOrEqual(Vectors.maxAbsDiff(got, want), atol, name)
            let nhwc = try Preprocessor.preprocess(rgb: decoded, width: shape[1], height: shape[0], spec: spec, layout: .nhwc)
            let s = spec.inputSize
            for c in 0..<3 {
                for i in stride(from: 0, to: s * s, by: 17) {
                    XCTAssertEqual(nhwc[i * 3 + c], got[c * s * s + i], name)
                }
            }
        }
    }

    func testResizeWeightsMatchTheWorkedExample() throws {
        let expected = try Vectors.json("images/expected.json")
        let ex = try XCTUnwrap(expected["resize_weights_example"] as? [String: Any])
        let n = try XCTUnwrap(ex["first_outputs"] as? NSNumber).intValue
        let taps = Preprocessor.resizeWeights(inSize: try XCTUnwrap(ex["in"] as? NSNumber).intValue,
                                              outSize: try XCTUnwrap(ex["out"] as? NSNumber).intValue, offset: 0, count: n)
        let indices = ex["indices"] as? [Any] ?? []
        let weights = ex["weights"] as? [Any] ?? []
        for o in 0..<n {
            let wantIdx = Vectors.ints(indices[o])
            let wantW = Vectors.doubles(weights[o])
            XCTAssertEqual(Array(taps.index[(o * taps.taps)..<(o * taps.taps + wantIdx.count)]), wantIdx)
            XCTAssertEqual(Array(taps.weight[(o * taps.taps)..<(o * taps.taps + wantW.count)]), wantW)
        }
    }

    func testOpaqueAndTransparentRgba() throws {
        let spec = try PreprocessingSpec(inputSize: 32)
        // Fully transparent black composites to white.
        let clear = [UInt8](repeating: 0, count: 40 * 40 * 4)
        XCTAssertTrue(try Preprocessor.preprocess(rgba: clear, width: 40, height: 40, spec: spec).allSatisfy { $0 == 1 })
        // An opaque image already at the resize size is cropped exactly.
        var rgba = [UInt8](repeating: 255, count: 37 * 37 * 4)
        for i in 0..<(37 * 37) {
            rgba[i * 4] = UInt8(i % 251)
        }
        let t = try Preprocessor.preprocess(rgba: rgba, width: 37, height: 37, spec: spec)
        XCTAssertEqual(t[0], Float(Double(rgba[(2 * 37 + 2) * 4]) / 255.0))
        XCTAssertThrowsError(try Preprocessor.preprocess(rgba: [1, 2, 3], width: 4, height: 4, spec: spec))
    }
}
