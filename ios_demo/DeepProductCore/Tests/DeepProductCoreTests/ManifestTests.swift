@testable import DeepProductCore
import XCTest

/// manifest.json reading with the errors of sdk_python/model_manifest.py; JSON-equality filters.
final class ManifestTests: XCTestCase {
    func testReadsTheFieldsAnAppNeeds() throws {
        let m = try ModelManifest(data: Vectors.data("bad/manifests/good.json"), source: "m.json")
        XCTAssertEqual(m.embeddingSpaceId, String(repeating: "0", count: 64))
        XCTAssertEqual(m.modelVersion, "1")
        XCTAssertEqual(m.preprocessing.inputSize, 32)
        XCTAssertEqual(try m.artefact(format: "onnx").file, "model.onnx")
        XCTAssertThrowsError(try m.artefact(format: "coreml")) { error in
            XCTAssertEqual((error as? DeepProductError)?.problem, "m.json: no coreml/fp32 artefact (have: onnx/fp32)")
        }
    }

    func testErrorsReadLikeThePythonSdk() {
        let cases = [
            (#"{"format": "x"}"#, "m.json: not a DeepProduct model manifest (format='x')"),
            (#"{"format": "deepproduct-model-manifest", "manifest_version": 2}"#,
             "m.json: manifest version 2 is newer than this SDK supports (1)"),
            (#"{"format": "deepproduct-model-manifest", "manifest_version": 1}"#,
             "m.json: model: required field is missing (manifest schema)"),
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
