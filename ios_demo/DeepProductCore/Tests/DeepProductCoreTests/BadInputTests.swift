@testable import DeepProductCore
import XCTest

/// tests/vectors/bad/ and model/index mix-ups: the Python SDK's error class and exact message.
final class BadInputTests: XCTestCase {
    private let cases: [(String, String, String)] = [
        ("truncated.dpindex", "TruncatedIndexError",
         "truncated: 3716 bytes on disk but the header says 7432 (an interrupted copy or download?)"),
        ("version2.dpindex", "UnsupportedVersionError",
         "index format version 2 is newer than this reader supports (1); upgrade deepproduct or rebuild the index with this version"),
        ("bad_checksum.dpindex", "ChecksumError",
         "checksum mismatch (stored CRC-32 12dbcc24, computed 313f27ae): the file is damaged; rebuild or re-copy it"),
        ("bad_header_crc.dpindex", "ChecksumError", "header CRC-32 mismatch: the header is damaged"),
        ("not_an_index.dpindex", "IndexFileError",
         "not a DeepProduct gallery index (magic b'\\x89PNG\\r\\n\\x1a\\n', expected b'DPINDEX\\x00')"),
    ]

    func testBadFilesFailWithTheSdksErrors() throws {
        for (file, pythonClass, problem) in cases {
            XCTAssertThrowsError(try Vectors.index("bad/\(file)"), file) { error in
                guard let e = error as? DeepProductError else {
                    return XCTFail("\(file): unexpected error \(error)")
                }
                XCTAssertEqual(e.pythonClass, pythonClass, file)
                XCTAssertEqual(e.problem, problem, file)
                XCTAssertEqual(e.description, "bad/\(file): \(problem)")
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
