import Foundation

/// The parts of the exporter's `manifest.json` the demo needs (docs/manifest.md): the input
/// contract, the embedding-space id checked against the index, and the artefact files.
/// Mirrors sdk_python/model_manifest.py, including its errors.
public struct ModelManifest {
    public static let format = "deepproduct-model-manifest"
    public static let version = 1

    public struct Artefact {
        public let file: String
        public let format: String
        public let precision: String
        public let layout: String
        public let inputName: String
        public let outputName: String
        public let sha256: String
    }

    public let source: String
    public let modelName: String
    public let modelVersion: String
    public let backbone: String
    public let embeddingDim: Int
    public let embeddingSpaceId: String
    public let preprocessing: PreprocessingSpec
    public let artefacts: [Artefact]

    public init(data: Data, source: String) throws {
        guard let raw = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw DeepProductError.invalidManifest("\(source): not valid JSON")
        }
        guard raw["format"] as? String == ModelManifest.format else {
            throw DeepProductError.invalidManifest("\(source): not a DeepProduct model manifest (format=\(ModelManifest.pyRepr(raw["format"])))")
        }
        guard let manifestVersion = raw["manifest_version"] as? NSNumber, !MetadataFilter.isBool(manifestVersion),
              manifestVersion.doubleValue == manifestVersion.doubleValue.rounded(),
              manifestVersion.intValue <= ModelManifest.version else {
            throw DeepProductError.invalidManifest("\(source): manifest version \(ModelManifest.pyRepr(raw["manifest_version"])) is newer than this SDK supports (\(ModelManifest.version))")
        }
        func required<T>(_ d: [String: Any], _ key: String) throws -> T {
            guard let value = d[key] else {
                throw DeepProductError.invalidManifest("\(source): missing required field '\(key)'")
            }
            guard let typed = value as? T else {
                throw DeepProductError.invalidManifest("\(source): field '\(key)' has the wrong JSON type")
            }
            return typed
        }
        let model: [String: Any] = try required(raw, "model")
        let name: Any = try required(model, "name")
        let version: Any = try required(model, "version")
        let backbone: Any = try required(model, "backbone")
        let dim: NSNumber = try required(model, "embedding_dim")
        self.source = source
        self.modelName = "\(name)"
        self.modelVersion = "\(version)"
        self.backbone = "\(backbone)"
        self.embeddingDim = dim.intValue
        self.embeddingSpaceId = try required(raw, "embedding_space_id")
        self.preprocessing = try PreprocessingSpec(manifestPreprocessing: try required(raw, "preprocessing"))
        var artefacts = [Artefact]()
        for a in raw["artefacts"] as? [[String: Any]] ?? [] {
            artefacts.append(Artefact(file: try required(a, "file"), format: try required(a, "format"),
                                      precision: try required(a, "precision"), layout: try required(a, "layout"),
                                      inputName: a["input_name"] as? String ?? "image",
                                      outputName: a["output_name"] as? String ?? "embedding",
                                      sha256: a["sha256"] as? String ?? ""))
        }
        self.artefacts = artefacts
    }

    /// The artefact of a format ("onnx", "tflite", "coreml") and precision ("fp32", ...).
    public func artefact(format: String, precision: String = "fp32") throws -> Artefact {
        if let a = artefacts.first(where: { $0.format == format && $0.precision == precision }) {
            return a
        }
        let have = artefacts.map { "\($0.format)/\($0.precision)" }.joined(separator: ", ")
        throw DeepProductError.invalidManifest("\(source): no \(format)/\(precision) artefact (have: \(have.isEmpty ? "none" : have))")
    }

    private static func pyRepr(_ v: Any?) -> String {
        guard let v = v, !(v is NSNull) else { return "None" }
        if let s = v as? String { return "'\(s)'" }
        return "\(v)"
    }
}
