import Foundation

/// The host-side half of the model's input contract (docs/method.md section 6), as recorded in the
/// model manifest's `preprocessing` object. Mirrors `deepproduct.sdk.preprocessing.PreprocessingSpec`.
public struct PreprocessingSpec: Equatable {
    public static let specVersion = 1
    public static let resizeAlgorithm = "triangle-antialias-half-pixel-v1"

    public let inputSize: Int
    public let resizeShorter: Int
    /// Background the alpha channel is composited over, 0...255 per channel (RGB).
    public let alphaBackground: [Int]

    public init(inputSize: Int = 224, resizeShorter: Int? = nil, alphaBackground: [Int] = [255, 255, 255]) throws {
        let shorter = resizeShorter ?? Int((Double(inputSize) * 256.0 / 224.0 + 0.5).rounded(.down))
        guard inputSize > 0, shorter >= inputSize else {
            throw DeepProductError.invalidSpec("preprocessing spec needs 0 < input_size <= resize_shorter, got input_size=\(inputSize) resize_shorter=\(shorter)")
        }
        guard alphaBackground.count == 3 else {
            throw DeepProductError.invalidSpec("alpha_background must have 3 values (RGB)")
        }
        self.inputSize = inputSize
        self.resizeShorter = shorter
        self.alphaBackground = alphaBackground
    }

    /// Reads the manifest's `preprocessing` object; refuses a newer spec version or another resize
    /// algorithm, like the Python SDK, because either would silently change the tensor.
    public init(manifestPreprocessing d: [String: Any]) throws {
        let version = (d["version"] as? NSNumber)?.intValue ?? PreprocessingSpec.specVersion
        if version > PreprocessingSpec.specVersion {
            throw DeepProductError.invalidSpec("preprocessing spec version \(version) is newer than this SDK understands (\(PreprocessingSpec.specVersion)); upgrade deepproduct")
        }
        let algorithm = d["resize_algorithm"] as? String ?? PreprocessingSpec.resizeAlgorithm
        if algorithm != PreprocessingSpec.resizeAlgorithm {
            throw DeepProductError.invalidSpec("unknown resize algorithm '\(algorithm)'")
        }
        let order = d["colour_order"] as? String ?? "RGB"
        if order != "RGB" {
            throw DeepProductError.invalidSpec("unsupported colour_order '\(order)' (only RGB)")
        }
        let background = (d["alpha_background"] as? [NSNumber])?.map { $0.intValue } ?? [255, 255, 255]
        try self.init(inputSize: (d["input_size"] as? NSNumber)?.intValue ?? 224,
                      resizeShorter: (d["resize_shorter"] as? NSNumber)?.intValue,
                      alphaBackground: background)
    }
}
