@testable import DeepProductCore
import XCTest

/// The shared JSON grammar corpus (tests/vectors/json/, docs/json.md): the same accept/refuse
/// verdict as the Python SDK, the JS and the JVM cores for every file. Also two places where the
/// cores once differed (issue 19): a huge k is clamped to the item count, and a leading U+FEFF in
/// an id or the space id is kept.
final class JSONVectorsTests: XCTestCase {
    func testEveryCorpusFileGetsItsVerdict() throws {
        let expected = try Vectors.json("json/expected.json")
        XCTAssertEqual((expected["grammar_version"] as? NSNumber)?.intValue, StrictJSON.grammarVersion)
        XCTAssertEqual((expected["max_depth"] as? NSNumber)?.intValue, StrictJSON.maxDepth)
        let cases = try XCTUnwrap(expected["cases"] as? [String: [String: Any]])
        let present = try FileManager.default.contentsOfDirectory(atPath: Vectors.root.appendingPathComponent("json").path)
        XCTAssertEqual(Set(present).subtracting(["expected.json"]), Set(cases.keys))
        XCTAssertGreaterThanOrEqual(cases.count, 60)
        var wrong = [String]()
        for (file, want) in cases.sorted(by: { $0.key < $1.key }) {
            let data = try Vectors.data("json/\(file)")
            var got = "accept"
            do {
                _ = try StrictJSON.parse(data)
            } catch let e as StrictJSON.Failure {
                got = "refuse"
                XCTAssertFalse(e.message.contains("\n"), e.message)
            }
            if got != want["verdict"] as? String {
                wrong.append("\(file): expected \(want["verdict"] ?? "?"), got \(got)")
            }
        }
        XCTAssertEqual(wrong, [], "verdicts differing from tests/vectors/json/expected.json")
    }

    func testValues() throws {
        let a = try XCTUnwrap(StrictJSON.parse(text: "[1e-400, -0, 2.5, 12, true, null, \"\\ud83d\\ude00\"]") as? [Any])
        XCTAssertEqual((a[0] as? NSNumber)?.doubleValue, 0)
        XCTAssertEqual((a[1] as? NSNumber)?.int64Value, 0)
        XCTAssertEqual((a[2] as? NSNumber)?.doubleValue, 2.5)
        XCTAssertEqual((a[3] as? NSNumber)?.int64Value, 12)
        XCTAssertTrue(MetadataFilter.isBool(try XCTUnwrap(a[4] as? NSNumber)))
        XCTAssertFalse(MetadataFilter.isBool(try XCTUnwrap(a[3] as? NSNumber)))
        XCTAssertTrue(a[5] is NSNull)
        XCTAssertEqual(a[6] as? String, "\u{1F600}")
        XCTAssertEqual(try StrictJSON.parse(bytes: [0x22, 0xEF, 0xBB, 0xBF, 0x22]) as? String, "\u{FEFF}")
        // Keys by code points: precomposed and decomposed e-acute are two keys, as in Python.
        XCTAssertNoThrow(try StrictJSON.parse(text: "{\"\u{E9}\": 1, \"e\u{301}\": 2}"))
        XCTAssertTrue(StrictJSON.overflows("1e400"))
        XCTAssertTrue(StrictJSON.overflows("-0.01e99999999999999999999"))
        XCTAssertFalse(StrictJSON.overflows("1e-400"))
        XCTAssertFalse(StrictJSON.overflows("0.000e999"))
    }

    func testHugeKIsClampedToTheItemCount() throws {
        let index = try Vectors.index("index/float32.dpindex")
        let q = index.vector(3)
        for coarse in [true, false] {
            index.useCoarseScan = coarse
            let all = try index.search(q, k: index.count).map { $0.position }
            XCTAssertEqual(all.count, index.count)
            for k in [100_000_000, Int.max] {
                XCTAssertEqual(try index.search(q, k: k).map { $0.position }, all)
                XCTAssertEqual(try index.searchProducts(q, k: k).count, Set(index.productIds).count)
            }
        }
        let empty = try Vectors.index("index/empty.dpindex")
        let ones = [Float](repeating: 1, count: empty.dim)
        XCTAssertEqual(try empty.search(ones, k: Int.max).count, 0)
        XCTAssertEqual(try empty.searchProducts(ones, k: Int.max).count, 0)
    }

    func testALeadingBomIsKeptInIdsAndTheSpaceId() throws {
        var b = [UInt8](try Vectors.data("index/float32.dpindex"))
        let original = try Vectors.index("index/float32.dpindex")
        let h = original.header
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        b.replaceSubrange(h.sections["space_id"]!.offset..<(h.sections["space_id"]!.offset + 3), with: bom)
        b.replaceSubrange(h.sections["id_bytes"]!.offset..<(h.sections["id_bytes"]!.offset + 3), with: bom)
        let body = h.fileSize - IndexHeader.trailerSize
        let crc = CRC32.checksum(b[0..<body])
        for i in 0..<4 {
            b[body + i] = UInt8((crc >> (8 * UInt32(i))) & 0xFF)
        }
        let index = try GalleryIndex(data: Data(b), source: "bom.dpindex")
        XCTAssertEqual(index.productIds[0], "\u{FEFF}" + String(original.productIds[0].dropFirst(3)))
        XCTAssertEqual(index.embeddingSpaceId, "\u{FEFF}" + String(original.embeddingSpaceId.dropFirst(3)))
    }
}
