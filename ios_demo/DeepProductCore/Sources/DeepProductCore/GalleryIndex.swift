import Foundation

/// One hit: the item's position in the index, its product id, cosine score and metadata object.
public struct SearchResult {
    public let position: Int
    public let productId: String
    public let score: Double
    public let item: [String: Any]

    /// The item's `title` metadata, or its product id when it has none.
    public var title: String { item["title"] as? String ?? productId }
}

/// A `.dpindex` gallery (docs/index-format.md; sdk_python/index_format.py is the reference reader
/// this type mirrors, error for error).
public final class GalleryIndex {
    public let header: IndexHeader
    public let source: String?
    /// Embedding-space id of the model that built the index ("" = unknown model).
    public let embeddingSpaceId: String
    public let scales: [Float]?
    public let productIds: [String]
    public let items: [[String: Any]]
    public let info: [String: Any]
    /// float32 rows, or int8 codes widened to Float (exact), row-major count x dim.
    private let rows: [Float]
    /// false: the plain Double scan of every row (the reference the tests compare with).
    var useCoarseScan = true
    /// Stage-1 codes of the two-stage scan (CoarseScan), built on the first search.
    private lazy var coarseScan = CoarseScan(rows: rows, count: count, dim: dim, int8: storage == "int8")

    public var dim: Int { header.dim }
    public var count: Int { productIds.count }
    public var storage: String { header.storage }

    /// Parses an index held in memory (a bundle resource, a download).
    /// - Parameter verify: recompute the whole-file CRC-32 (the SDK's default).
    public init(data: Data, source: String? = nil, verify: Bool = true) throws {
        let bytes = [UInt8](data)
        let h = try IndexHeader.unpack(bytes, source: source, actualSize: bytes.count)
        if verify {
            try GalleryIndex.verifyChecksum(bytes, header: h, source: source)
        }
        func section(_ name: String) -> ArraySlice<UInt8> {
            let s = h.sections[name]!
            return s.length == 0 ? [] : bytes[s.offset..<s.end]
        }
        // Validated, then decoded with the standard library's UTF-8 decoder, which keeps a leading
        // U+FEFF (as Python and the JVM do); Foundation's String(bytes:encoding:) may drop it.
        guard StrictJSON.validUTF8(section("space_id")) else {
            throw DeepProductError.indexFile(source: source, problem: "embedding-space id is not UTF-8")
        }
        let space = String(decoding: section("space_id"), as: UTF8.self)
        var scales: [Float]?
        if h.storage == "int8" {
            let s = h.sections["scales"]!
            scales = (0..<h.dim).map { LE.f32(bytes, s.offset + 4 * $0) }
        }
        let offSection = h.sections["id_offsets"]!
        let offsets = (0...h.count).map { Int(LE.u32(bytes, offSection.offset + 4 * $0)) }
        let idBytes = section("id_bytes")
        var consistent = offsets[0] == 0 && offsets[h.count] == idBytes.count
        var i = 0
        while consistent && i < h.count {
            consistent = offsets[i + 1] >= offsets[i]
            i += 1
        }
        if !consistent {
            throw DeepProductError.indexFile(source: source, problem: "ids table offsets are inconsistent with the id bytes")
        }
        if let sc = scales, !sc.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= 1 }) {
            throw DeepProductError.indexFile(source: source, problem: "int8 scales must be finite, positive and at most 1")
        }
        let idStart = idBytes.startIndex
        var ids = [String]()
        ids.reserveCapacity(h.count)
        for j in 0..<h.count {
            let slice = idBytes[(idStart + offsets[j])..<(idStart + offsets[j + 1])]
            guard StrictJSON.validUTF8(slice) else {
                throw DeepProductError.indexFile(source: source, problem: "product id \(j) is not UTF-8")
            }
            ids.append(String(decoding: slice, as: UTF8.self))
        }
        let v = h.sections["vectors"]!
        let n = h.count * h.dim
        var rows = [Float](repeating: 0, count: n)
        if h.storage == "float32" {
            for j in 0..<n {
                rows[j] = LE.f32(bytes, v.offset + 4 * j)
            }
            if verify, let bad = rows.firstIndex(where: { !$0.isFinite }) {
                throw DeepProductError.indexFile(source: source, problem: "vector \(bad / h.dim) contains NaN or infinity")
            }
            // Rows are stored unit length (docs/index-format.md): a longer row would score above 1.
            if verify {
                for r in 0..<h.count {
                    var sq = 0.0
                    for j in (r * h.dim)..<((r + 1) * h.dim) { sq += Double(rows[j]) * Double(rows[j]) }
                    let norm = sq.squareRoot()
                    if abs(norm - 1.0) > 1e-3 {
                        throw DeepProductError.indexFile(source: source,
                                                         problem: "vector \(r) is not unit length (norm \(norm)); float32 rows are stored normalised")
                    }
                }
            }
        } else {
            for j in 0..<n {
                rows[j] = Float(Int8(bitPattern: bytes[v.offset + j]))
            }
        }
        let doc = try GalleryIndex.parseMetadata(Data(section("metadata")), count: h.count, source: source)
        self.header = h
        self.source = source
        self.embeddingSpaceId = space
        self.scales = scales
        self.productIds = ids
        self.items = doc.items
        self.info = doc.info
        self.rows = rows
    }

    /// Convenience: reads a file URL (an app bundle resource) and parses it.
    public convenience init(contentsOf url: URL, verify: Bool = true) throws {
        try self.init(data: Data(contentsOf: url), source: url.path, verify: verify)
    }

    /// Deepest array/object nesting accepted (the Python SDK's MAX_JSON_DEPTH; StrictJSON enforces it).
    static let maxJSONDepth = StrictJSON.maxDepth


    /// Whole-file CRC-32 over everything before the trailer, and the trailer's end magic.
    static func verifyChecksum(_ bytes: [UInt8], header: IndexHeader, source: String?) throws {
        let body = header.fileSize - IndexHeader.trailerSize
        let computed = CRC32.checksum(bytes[0..<body])
        let stored = LE.u32(bytes, body)
        let magic = Array(bytes[(body + 4)..<(body + 8)])
        if magic != IndexHeader.trailerMagic {
            throw DeepProductError.indexFile(source: source, problem: "bad trailer magic \(Messages.pyBytes(magic)) (expected \(Messages.pyBytes(IndexHeader.trailerMagic)))")
        }
        if stored != computed {
            throw DeepProductError.checksum(source: source, problem: String(format: "checksum mismatch (stored CRC-32 %08x, computed %08x): the file is damaged; rebuild or re-copy it", stored, computed))
        }
    }

    static func parseMetadata(_ raw: Data, count: Int, source: String?) throws -> (items: [[String: Any]], info: [String: Any]) {
        let object: Any
        do {
            // The one grammar of docs/json.md (not JSONSerialization's): same verdicts as every core.
            object = try StrictJSON.parse(raw)
        } catch let error as StrictJSON.Failure {
            throw DeepProductError.indexFile(source: source, problem: "metadata block is not valid UTF-8 JSON (\(error.message))")
        }
        guard let doc = object as? [String: Any], let items = doc["items"] as? [Any] else {
            throw DeepProductError.indexFile(source: source, problem: "metadata block must be a JSON object with an 'items' array")
        }
        if items.count != count {
            throw DeepProductError.indexFile(source: source, problem: "metadata has \(items.count) items but the header says \(count)")
        }
        let objects = items.compactMap { $0 as? [String: Any] }
        if objects.count != items.count {
            throw DeepProductError.indexFile(source: source, problem: "every metadata item must be a JSON object")
        }
        return (objects, doc["index"] as? [String: Any] ?? [:])
    }

    /// Item i's vector, dequantised for int8 storage (code * scale[d] in Float).
    public func vector(_ i: Int) -> [Float] {
        (0..<dim).map { d in
            let x = rows[i * dim + d]
            return scales.map { x * $0[d] } ?? x
        }
    }

    /// Refuses a model whose manifest names another embedding space (vectors of different models
    /// are not comparable). As in the SDK's check_embedding_space, an empty id on either side
    /// (unknown model) skips the check.
    public func requireEmbeddingSpace(_ modelSpaceId: String) throws {
        if !modelSpaceId.isEmpty && !embeddingSpaceId.isEmpty && embeddingSpaceId != modelSpaceId {
            throw DeepProductError.embeddingSpaceMismatch(source: source, problem: Messages.spaceMismatch(embeddingSpaceId, modelSpaceId))
        }
    }

    /// qn = Float(q / ||q||) with the norm in Double; for int8, w = Float(qn * scale).
    func scoringQuery(_ q: [Float]) throws -> [Float] {
        if q.count != dim {
            throw DeepProductError.queryDimension(source: source, problem: Messages.queryDimension(q.count, dim))
        }
        var ss = 0.0
        for v in q {
            if !v.isFinite {
                throw DeepProductError.invalidQuery(Messages.nonFiniteQuery)
            }
            ss += Double(v) * Double(v)
        }
        let n = ss.squareRoot()
        if n == 0 {
            throw DeepProductError.invalidQuery(Messages.zeroQuery)
        }
        return (0..<dim).map { d in
            let qn = Float(Double(q[d]) / n)
            return scales.map { qn * $0[d] } ?? qn
        }
    }

    /// The `k` best items for `query`, best first, ties by smaller position; scores per
    /// docs/index-format.md "Scoring" (Double accumulation).
    /// - Parameter filter: metadata field -> value (or array of accepted values); empty for none.
    public func search(_ query: [Float], k: Int, filter: [String: Any] = [:]) throws -> [SearchResult] {
        guard k >= 1 else { throw DeepProductError.invalidQuery(Messages.badK(k)) }
        // At most every item can be returned; no buffer or candidate count is ever sized by the
        // caller's k (the JVM core once died with OutOfMemoryError on k = 100,000,000).
        let kept = min(k, count)
        let w = try scoringQuery(query)
        let eligible: ((Int) -> Bool)? = filter.isEmpty ? nil : { MetadataFilter.matches(self.items[$0], filter) }
        // Two stages (CoarseScan): the candidates, ascending, then only they get the Double score.
        let rowsToScore = useCoarseScan && count > 0
            ? coarseScan.candidates(w, k: kept, eligible: eligible)
            : (0..<count).filter { eligible?($0) ?? true }
        var hits = [(position: Int, score: Double)]()
        for i in rowsToScore {
            var s = 0.0
            let base = i * dim
            for d in 0..<dim {
                s += Double(w[d]) * Double(rows[base + d])
            }
            hits.append((i, s))
        }
        hits.sort { $0.score > $1.score || ($0.score == $1.score && $0.position < $1.position) }
        return hits.prefix(kept).map { SearchResult(position: $0.position, productId: productIds[$0.position], score: $0.score, item: items[$0.position]) }
    }

    /// The `k` best distinct products, each scored by its best image (the hit's position), best
    /// first; ties by smaller position -- the SDK's `search(..., unique_products=True)`. Products
    /// rank by their first item in the item ranking, so the item search deepens until k appear.
    public func searchProducts(_ query: [Float], k: Int, filter: [String: Any] = [:]) throws -> [SearchResult] {
        guard k >= 1 else { throw DeepProductError.invalidQuery(Messages.badK(k)) }
        // No more products than items; and 4 * k would trap on overflow for a huge k.
        let wanted = min(k, max(count, 1))
        var depth = max(4 * wanted, 16)
        while true {
            let hits = try search(query, k: depth, filter: filter)
            var seen = Set<String>()
            var out = [SearchResult]()
            for hit in hits where out.count < k && !seen.contains(hit.productId) {
                seen.insert(hit.productId)
                out.append(hit)
            }
            if out.count == k || hits.count < depth || depth >= count {
                return out
            }
            depth = min(depth * 4, count)
        }
    }
}
