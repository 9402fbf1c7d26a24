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

    /// Strict, with the errors of sdk_python/model_manifest.py: every field the schema
    /// (export/manifest.schema.json) requires and this core uses must be present with its type
    /// (no defaults), only the preprocessing this core implements, artefact paths confined to the
    /// model folder. (This core checks those fields by hand; the Python, JVM and JS readers
    /// enforce the whole schema file.)
    public init(data: Data, source: String) throws {
        func fail(_ field: String, _ problem: String) -> DeepProductError {
            .invalidManifest("\(source): \(field): \(problem)")
        }
        let parsed: Any
        do {
            // The one grammar of docs/json.md (not JSONSerialization's): same verdicts as every core.
            parsed = try StrictJSON.parse(data)
        } catch let error as StrictJSON.Failure {
            throw DeepProductError.invalidManifest("\(source): not valid JSON (\(error.message))")
        }
        guard let raw = parsed as? [String: Any] else {
            throw fail("(top level)", "a model manifest is a JSON object")
        }
        guard raw["format"] as? String == ModelManifest.format else {
            throw DeepProductError.invalidManifest("\(source): not a DeepProduct model manifest (format=\(ModelManifest.pyRepr(raw["format"])))")
        }
        let mv = raw["manifest_version"] as? NSNumber
        if let mv = mv, !MetadataFilter.isBool(mv), mv.doubleValue == mv.doubleValue.rounded(), mv.intValue > ModelManifest.version {
            throw DeepProductError.invalidManifest("\(source): manifest version \(mv.intValue) is newer than this SDK supports (\(ModelManifest.version))")
        }
        guard let version = mv, !MetadataFilter.isBool(version), version.doubleValue == Double(ModelManifest.version) else {
            throw fail("manifest_version", "\(ModelManifest.pyRepr(raw["manifest_version"])) is not a valid version (this SDK reads the integer \(ModelManifest.version))")
        }
        func object(_ d: [String: Any], _ key: String, _ path: String) throws -> [String: Any] {
            guard d[key] != nil else { throw fail(path, "required field is missing (manifest schema)") }
            guard let o = d[key] as? [String: Any] else { throw fail(path, "is not of type object (manifest schema)") }
            return o
        }
        func string(_ d: [String: Any], _ key: String, _ path: String, nonEmpty: Bool = true) throws -> String {
            guard d[key] != nil else { throw fail(path, "required field is missing (manifest schema)") }
            guard let v = d[key] as? String, !(nonEmpty && v.isEmpty) else {
                throw fail(path, "\(ModelManifest.pyRepr(d[key])) is not a non-empty string (manifest schema)")
            }
            return v
        }
        func positiveInt(_ d: [String: Any], _ key: String, _ path: String) throws -> Int {
            guard d[key] != nil else { throw fail(path, "required field is missing (manifest schema)") }
            guard let n = d[key] as? NSNumber, !MetadataFilter.isBool(n), n.doubleValue == n.doubleValue.rounded(),
                  n.doubleValue >= 1, n.doubleValue < 1e9 else {
                throw fail(path, "\(ModelManifest.pyRepr(d[key])) is not an integer >= 1 (manifest schema)")
            }
            return n.intValue
        }
        let model = try object(raw, "model", "model")
        self.source = source
        self.modelName = try string(model, "name", "model.name")
        self.modelVersion = try string(model, "version", "model.version")
        self.backbone = try string(model, "backbone", "model.backbone")
        self.embeddingDim = try positiveInt(model, "embedding_dim", "model.embedding_dim")
        _ = try positiveInt(model, "input_size", "model.input_size")
        let space = try string(raw, "embedding_space_id", "embedding_space_id")
        let hex = Set("0123456789abcdef")
        guard space.count == 64, space.allSatisfy({ hex.contains($0) }) else {
            throw fail("embedding_space_id", "\(ModelManifest.pyRepr(space)) does not match '^[0-9a-f]{64}$' (manifest schema)")
        }
        self.embeddingSpaceId = space
        let input = try object(raw, "input", "input")
        guard input["colour_order"] as? String == "RGB" else {
            throw fail("input.colour_order", "\(ModelManifest.pyRepr(input["colour_order"])) is not one of ['RGB'] (manifest schema)")
        }
        let pre = try object(raw, "preprocessing", "preprocessing")
        let inputSize = try positiveInt(pre, "input_size", "preprocessing.input_size")
        let shorter = try positiveInt(pre, "resize_shorter", "preprocessing.resize_shorter")
        _ = try positiveInt(pre, "version", "preprocessing.version")
        _ = try string(pre, "resize_algorithm", "preprocessing.resize_algorithm")
        for (key, want) in [("colour_order", "RGB"), ("crop", "centre")] where pre[key] as? String != want {
            throw fail("preprocessing.\(key)", "\(ModelManifest.pyRepr(pre[key])) is not supported by this SDK (only '\(want)'; docs/preprocessing.md)")
        }
        guard let range = pre["value_range"] as? [NSNumber], range.count == 2, !range.contains(where: MetadataFilter.isBool),
              range[0].doubleValue == 0, range[1].doubleValue == 1 else {
            throw fail("preprocessing.value_range", "\(ModelManifest.pyRepr(pre["value_range"])) is not supported by this SDK (only [0, 1]; docs/preprocessing.md)")
        }
        if shorter < inputSize {
            throw fail("preprocessing.resize_shorter", "\(shorter) is smaller than input_size \(inputSize)")
        }
        self.preprocessing = try PreprocessingSpec(manifestPreprocessing: pre)
        guard let list = raw["artefacts"] as? [Any], !list.isEmpty else {
            throw fail("artefacts", "must be a non-empty array (manifest schema)")
        }
        var artefacts = [Artefact]()
        for (i, item) in list.enumerated() {
            guard let a = item as? [String: Any] else { throw fail("artefacts[\(i)]", "is not of type object (manifest schema)") }
            let file = try string(a, "file", "artefacts[\(i)].file")
            try ModelManifest.confine(file, field: "artefacts[\(i)].file", what: "file", source: source)
            let sha = try string(a, "sha256", "artefacts[\(i)].sha256")
            guard sha.count == 64, sha.allSatisfy({ hex.contains($0) }) else {
                throw fail("artefacts[\(i)].sha256", "\(ModelManifest.pyRepr(sha)) does not match '^[0-9a-f]{64}$' (manifest schema)")
            }
            artefacts.append(Artefact(file: file, format: try string(a, "format", "artefacts[\(i)].format"),
                                      precision: try string(a, "precision", "artefacts[\(i)].precision"),
                                      layout: try string(a, "layout", "artefacts[\(i)].layout"),
                                      inputName: try string(a, "input_name", "artefacts[\(i)].input_name", nonEmpty: false),
                                      outputName: try string(a, "output_name", "artefacts[\(i)].output_name", nonEmpty: false),
                                      sha256: sha))
        }
        guard let files = raw["files"] as? [Any] else { throw fail("files", "required field is missing (manifest schema)") }
        for (i, item) in files.enumerated() {
            guard let f = item as? [String: Any] else { throw fail("files[\(i)]", "is not of type object (manifest schema)") }
            try ModelManifest.confine(try string(f, "path", "files[\(i)].path"), field: "files[\(i)].path", what: "path", source: source)
        }
        self.artefacts = artefacts
    }

    /// Refuses anything but a plain relative path inside the model folder (no "..", "/x", "C:").
    static func confine(_ value: String, field: String, what: String, source: String) throws {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        let bad = value.isEmpty || value.hasPrefix("/") || value.contains("\\") || value.contains("\u{0}")
            || (parts.first?.contains(":") ?? true) || parts.contains { $0.isEmpty || $0 == "." || $0 == ".." }
        if bad {
            throw DeepProductError.invalidManifest("\(source): \(field): \(what) '\(value)' is not a plain relative path inside the model folder")
        }
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
