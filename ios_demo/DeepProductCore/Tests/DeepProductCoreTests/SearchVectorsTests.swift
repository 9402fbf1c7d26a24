@testable import DeepProductCore
import XCTest

/// tests/vectors/index/expected.json: positions, product ids and scores of the Python SDK for the
/// float32 and int8 indexes, every case and every query (same checks as the JVM and JS cores).
final class SearchVectorsTests: XCTestCase {
    private func check(_ name: String) throws {
        let expected = try Vectors.json("index/expected.json")
        let indexes = try XCTUnwrap(expected["indexes"] as? [String: Any])
        let spec = try XCTUnwrap(indexes[name] as? [String: Any])
        let atol = try XCTUnwrap(expected["score_atol"] as? NSNumber).doubleValue
        let queries = (expected["queries"] as? [Any] ?? []).map { Vectors.floats($0) }
        let file = try XCTUnwrap(spec["file"] as? String)
        let index = try Vectors.index("index/\(file)")

        XCTAssertEqual(index.dim, (expected["dim"] as? NSNumber)?.intValue)
        XCTAssertEqual(index.count, (expected["count"] as? NSNumber)?.intValue)
        XCTAssertEqual(index.embeddingSpaceId, expected["embedding_space_id"] as? String)
        XCTAssertEqual(index.storage, spec["storage"] as? String)

        let weights = (name == "int8" ? spec["int8_weights"] : expected["normalized_queries"]) as? [Any] ?? []
        for (q, query) in queries.enumerated() {
            XCTAssertEqual(try index.scoringQuery(query), Vectors.floats(weights[q]), "scoring weights of query \(q)")
        }
        XCTAssertGreaterThan(try checkCases(index, spec["cases"], queries, atol: atol, name: name, products: false), 100)
        // Product-level search: top-k distinct products, each by its best image.
        XCTAssertGreaterThan(try checkCases(index, spec["product_cases"], queries, atol: atol, name: name, products: true), 100)
    }

    /// Every case and query: positions, product ids and scores (within atol); returns the scores compared.
    private func checkCases(_ index: GalleryIndex, _ cases: Any?, _ queries: [[Float]], atol: Double, name: String,
                            products: Bool) throws -> Int {
        var checked = 0
        for case let c as [String: Any] in cases as? [Any] ?? [] {
            let k = try XCTUnwrap(c["k"] as? NSNumber).intValue
            let filter = c["filter"] as? [String: Any] ?? [:]
            let results = c["results"] as? [[String: Any]] ?? []
            for (q, query) in queries.enumerated() {
                let want = results[q]
                let got = try products ? index.searchProducts(query, k: k, filter: filter)
                                       : index.search(query, k: k, filter: filter)
                let what = "\(name)\(products ? " products" : "") k=\(k) filter=\(filter) query \(q)"
                XCTAssertEqual(got.map { $0.position }, Vectors.ints(want["positions"]), "\(what): positions")
                XCTAssertEqual(got.map { $0.productId }, want["product_ids"] as? [String] ?? [], "\(what): product ids")
                let scores = Vectors.doubles(want["scores"])
                for (r, hit) in got.enumerated() where r < scores.count {
                    XCTAssertEqual(hit.score, scores[r], accuracy: atol, "\(what): score at rank \(r + 1)")
                    checked += 1
                }
            }
        }
        return checked
    }

    func testFloat32IndexReproducesTheSdk() throws {
        try check("float32")
    }

    func testInt8IndexReproducesTheSdk() throws {
        try check("int8")
    }

    func testInt8ScalesAndDequantisation() throws {
        let expected = try Vectors.json("index/expected.json")
        let int8 = (expected["indexes"] as? [String: Any])?["int8"] as? [String: Any]
        let f = try Vectors.index("index/float32.dpindex")
        let q = try Vectors.index("index/int8.dpindex")
        let scales = try XCTUnwrap(q.scales)
        XCTAssertEqual(scales, Vectors.floats(int8?["scales"]))
        for i in 0..<f.count {
            for (d, pair) in zip(f.vector(i), q.vector(i)).enumerated() {
                XCTAssertEqual(pair.0, pair.1, accuracy: scales[d] / 2 + 1e-7, "item \(i) dim \(d)")
            }
        }
    }

    func testIdsMetadataTiesAndEmptyIndex() throws {
        let index = try Vectors.index("index/float32.dpindex")
        XCTAssertEqual(index.productIds[23], "p-café-23")
        XCTAssertNil(index.items[11]["category"])
        XCTAssertNotNil(index.items[5]["tags"] as? [Any])
        let query = index.vector(23).map { $0 * 3 }
        let top = try index.search(query, k: 2)
        XCTAssertEqual(top.map { $0.position }, [7, 23])
        XCTAssertEqual(top[0].score, top[1].score)
        let empty = try Vectors.index("index/empty.dpindex")
        XCTAssertEqual(empty.count, 0)
        XCTAssertTrue(try empty.search([Float](repeating: 1, count: 16), k: 5).isEmpty)
    }

    /// The two-stage scan returns exactly what the plain Double scan returns: same positions and
    /// scores on random, tied (items 7 and 23 are equal), extreme and filtered queries, k from 1
    /// to beyond the gallery (the JVM's CoarseScanTest and the JS core's coarse_scan.test.mjs).
    func testTwoStageScanEqualsThePlainScan() throws {
        for file in ["index/float32.dpindex", "index/int8.dpindex"] {
            let coarse = try Vectors.index(file)
            let plain = try Vectors.index(file)
            plain.useCoarseScan = false
            var rng = SystemRandomNumberGenerator()
            var compared = 0
            for t in 0..<400 {
                var q: [Float]
                if t % 5 == 0 {
                    q = coarse.vector(t % coarse.count)
                } else {
                    let scale = Float(pow(10.0, Double(Int.random(in: -30...30, using: &rng))))
                    q = (0..<coarse.dim).map { _ in Float.random(in: -1...1, using: &rng) * scale }
                    if t % 7 == 0 {
                        q[Int.random(in: 0..<coarse.dim, using: &rng)] *= 1e6
                    }
                }
                let filter: [String: Any] = t % 3 == 0 ? ["category": "mug"] : [:]
                for k in [1, 3, 5, 40, 100] {
                    let a = try coarse.search(q, k: k, filter: filter)
                    let b = try plain.search(q, k: k, filter: filter)
                    XCTAssertEqual(a.map { $0.position }, b.map { $0.position }, "\(file) query \(t) k=\(k)")
                    XCTAssertEqual(a.map { $0.score }, b.map { $0.score }, "\(file) query \(t) k=\(k)")
                    compared += a.count
                }
            }
            XCTAssertGreaterThan(compared, 10000)
        }
    }

    func testCRC32CheckValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
    }
}
