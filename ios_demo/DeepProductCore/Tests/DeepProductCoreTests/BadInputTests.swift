@testable import DeepProductCore
import XCTest

/// The shared hostile corpus and model/index mix-ups: the Python SDK's error class and message.
final class BadInputTests: XCTestCase {
    /// tests/vectors/bad/expected.json: the one list of hostile files and expected errors that the
    /// Python SDK and the Java, Swift and JS cores all check (tests/vectors/make_bad_vectors.py).
    func testHostileIndexesFromTheSharedCorpus() throws {
        let expected = try XCTUnwrap(Vectors.json("bad/expected.json")["index"] as? [String: [String: Any]])
        XCTAssertGreaterThanOrEqual(expected.count, 14)
        for (file, want) in expected {
            let source = "bad/\(file)"
            if want["valid"] as? Bool == true {
                let index = try Vectors.index(source)
                let ref = try Vectors.index(try XCTUnwrap(want["same_results_as"] as? String))
                XCTAssertEqual(index.count, (want["count"] as? NSNumber)?.intValue, source)
                for i in 0..<3 {
                    XCTAssertEqual(try index.search(ref.vector(i), k: 5).map { $0.position },
                                   try ref.search(ref.vector(i), k: 5).map { $0.position }, source)
                }
                continue
            }
            XCTAssertThrowsError(try Vectors.index(source), source) { error in
                guard let e = error as? DeepProductError else {
                    return XCTFail("\(source): unexpected error \(error)")
                }
                XCTAssertEqual(e.pythonClass, want["kind"] as? String, source)
                XCTAssertTrue(e.problem.hasPrefix(want["problem"] as? String ?? "?"), "\(source): \(e.problem)")
                XCTAssertEqual(e.description, "\(source): \(e.problem)")
            }
        }
    }

    func testHostileManifestsFromTheSharedCorpus() throws {
        let expected = try XCTUnwrap(Vectors.json("bad/expected.json")["manifest"] as? [String: [String: Any]])
        for (file, want) in expected {
            let source = "bad/\(file)"
            let data = try Vectors.data(source)
            if want["valid"] as? Bool == true {
                XCTAssertEqual(try ModelManifest(data: data, source: source).embeddingDim, 16)
                continue
            }
            XCTAssertThrowsError(try ModelManifest(data: data, source: source), source) { error in
                guard let e = error as? DeepProductError else {
                    return XCTFail("\(source): unexpected error \(error)")
                }
                XCTAssertEqual(e.pythonClass, want["kind"] as? String, source)
                XCTAssertTrue(e.problem.hasPrefix("\(source): ") && e.problem.contains(want["mentions"] as? String ?? "?"),
                              e.problem)
            }
        }
    }

    func testChecksumCanBeSkipped() throws {
        XCTAssertEqual(try GalleryIndex(data: Vectors.data("bad/bad_checksum.dpindex"), verify: false).count, 40)
    }

    func testModelIndexMixUpsAndBadQueries() throws {
        let index = try Vectors.index("index/float32.dpindex")
        XCTAssertNoThrow(try index.requireEmbeddingSpace("test-vectors-space-v1"))
        XCTAssertNoThrow(try index.requireEmbeddingSpace(""))
        let expectations: [(() throws -> Void, String, String)] = [
            ({ try index.requireEmbeddingSpace("other-space") }, "EmbeddingSpaceMismatchError",
             "built in embedding space 'test-vectors-space-v1' but the querying model produces 'other-space'; rebuild the index with this model (dp-search build)"),
            ({ _ = try index.search([Float](repeating: 1, count: 15), k: 5) }, "QueryDimensionError",
             "query has dimension 15 but the index holds 16-dimensional embeddings (wrong model?)"),
            ({ _ = try index.search([Float](repeating: 0, count: 16), k: 5) }, "ValueError",
             "query 0 is all zeros; cannot normalise"),
            ({ _ = try index.search([Float](repeating: .nan, count: 16), k: 5) }, "ValueError",
             "querys contain NaN or infinity"),
            ({ _ = try index.search(index.vector(0), k: 0) }, "ValueError", "k must be at least 1, got 0"),
        ]
        for (body, pythonClass, problem) in expectations {
            XCTAssertThrowsError(try body()) { error in
                XCTAssertEqual((error as? DeepProductError)?.pythonClass, pythonClass)
                XCTAssertEqual((error as? DeepProductError)?.problem, problem)
            }
        }
    }
}
