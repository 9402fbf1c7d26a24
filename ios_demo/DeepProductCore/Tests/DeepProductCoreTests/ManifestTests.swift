@testable import DeepProductCore
import XCTest

/// manifest.json reading with the errors of sdk_python/model_manifest.py; JSON-equality filters.
final class ManifestTests: XCTestCase {
    let good = """
    {"format": "deepproduct-model-manifest", "manifest_version": 1,
     "model": {"name": "m", "version": 3, "backbone": "efficientnet_lite0", "embedding_dim": 128},
     "embedding_space_id": "space-1",
     "preprocessing": {"input_size": 240, "resize_shorter": 274, "resize_algorithm": "triangle-antialias-half-pixel-v1"},
     "artefacts": [{"file": "m.mlpackage", "format": "coreml", "precision": "fp16", "layout": "image"}]}
    """

    func testReadsTheFieldsAnAppNeeds() throws {
        let m = try ModelManifest(data: Data(good.utf8), source: "m.json")
        XCTAssertEqual(m.embeddingSpaceId, "space-1")
        XCTAssertEqual(m.modelVersion, "3")
        XCTAssertEqual(m.preprocessing.inputSize, 240)
        XCTAssertEqual(try m.artefact(format: "coreml", precision: "fp16").file, "m.mlpackage")
        XCTAssertThrowsError(try m.artefact(format: "onnx")) { error in
            XCTAssertEqual((error as? DeepProductError)?.problem, "m.json: no onnx/fp32 artefact (have: coreml/fp16)")
        }
    }

    func testErrorsReadLikeThePythonSdk() {
        let cases = [
            (#"{"format": "x"}"#, "m.json: not a DeepProduct model manifest (format='x')"),
            (#"{"format": "deepproduct-model-manifest", "manifest_version": 2}"#,
             "m.json: manifest version 2 is newer than this SDK supports (1)"),
            (#"{"format": "deepproduct-model-manifest", "manifest_version": 1}"#,
             "m.json: missing required field 'model'"),
        ]
        for (json, message) in cases {
            XCTAssertThrowsError(try ModelManifest(data: Data(json.utf8), source: "m.json")) { error in
                XCTAssertEqual((error as? DeepProductError)?.problem, message)
            }
        }
    }

    func testFilterEqualityIsJsonEquality() throws {
        let item = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(#"{"category": "mug", "price": 12.0, "ok": true, "tag": null}"#.utf8)) as? [String: Any])
        XCTAssertTrue(MetadataFilter.matches(item, ["price": 12, "category": ["hat", "mug"]]))
        XCTAssertTrue(MetadataFilter.matches(item, ["ok": true, "tag": NSNull()]))
        XCTAssertFalse(MetadataFilter.matches(item, ["ok": 1]))
        XCTAssertFalse(MetadataFilter.matches(item, ["colour": NSNull()]))
    }
}
