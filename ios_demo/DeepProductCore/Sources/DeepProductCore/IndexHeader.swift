import Foundation

/// The fixed 256-byte header of a `.dpindex` file (docs/index-format.md, "Header"). Decoding
/// mirrors `unpack_header` / `_check_sections` of sdk_python/index_format.py check for check, in
/// the same order, so a damaged file fails with the same error on every platform.
public struct IndexHeader {
    public static let magic: [UInt8] = Array("DPINDEX".utf8) + [0]
    public static let trailerMagic: [UInt8] = Array("DPIE".utf8)
    public static let formatVersion = 1
    public static let headerSize = 256
    public static let trailerSize = 8
    public static let vectorAlignmentV1 = 64
    static let sectionAlignment = 8
    public static let sectionNames = ["space_id", "scales", "id_offsets", "id_bytes", "vectors", "metadata"]
    static let sectionTableOffset = 40
    static let headerCRCOffset = headerSize - 4

    public struct Section {
        public let offset: Int
        public let length: Int
        public var end: Int { offset + length }
    }

    public let formatVersion: Int
    public let flags: UInt32
    public let dim: Int
    /// "float32" or "int8".
    public let storage: String
    public let metric: String
    public let vectorAlignment: Int
    public let count: Int
    public let fileSize: Int
    public let sections: [String: Section]

    /// Decodes and validates the header; `actualSize` is the whole file's length.
    public static func unpack(_ bytes: [UInt8], source: String?, actualSize: Int) throws -> IndexHeader {
        let n = bytes.count
        if n < 12 {
            throw DeepProductError.truncatedIndex(source: source, problem: "only \(n) bytes; too short to be a gallery index")
        }
        let magic = Array(bytes[0..<8])
        if magic != IndexHeader.magic {
            throw DeepProductError.indexFile(source: source, problem: "not a DeepProduct gallery index (magic \(Messages.pyBytes(magic)), expected \(Messages.pyBytes(IndexHeader.magic)))")
        }
        let version = Int(LE.u16(bytes, 8))
        let headerSize = Int(LE.u16(bytes, 10))
        if version > IndexHeader.formatVersion {
            throw DeepProductError.unsupportedVersion(source: source, problem: "index format version \(version) is newer than this reader supports (\(IndexHeader.formatVersion)); upgrade deepproduct or rebuild the index with this version")
        }
        if version < 1 {
            throw DeepProductError.indexFile(source: source, problem: "invalid index format version \(version)")
        }
        if headerSize != IndexHeader.headerSize {
            throw DeepProductError.indexFile(source: source, problem: "header size \(headerSize) is not \(IndexHeader.headerSize) as format v1 requires")
        }
        if n < IndexHeader.headerSize {
            throw DeepProductError.truncatedIndex(source: source, problem: "file ends inside the \(IndexHeader.headerSize)-byte header (\(n) bytes)")
        }
        if CRC32.checksum(bytes[0..<headerCRCOffset]) != LE.u32(bytes, headerCRCOffset) {
            throw DeepProductError.checksum(source: source, problem: "header CRC-32 mismatch: the header is damaged")
        }
        let flags = LE.u32(bytes, 12)
        let dim = Int(LE.u32(bytes, 16))
        let storageCode = bytes[20]
        let metricCode = bytes[21]
        let alignment = Int(LE.u16(bytes, 22))
        let count = LE.u64(bytes, 24)
        let fileSize = LE.u64(bytes, 32)
        let storage: String
        switch storageCode {
        case 1: storage = "float32"
        case 2: storage = "int8"
        default: throw DeepProductError.indexFile(source: source, problem: "unknown storage code \(storageCode)")
        }
        if metricCode != 1 {
            throw DeepProductError.indexFile(source: source, problem: "unknown metric code \(metricCode)")
        }
        if dim < 1 {
            throw DeepProductError.indexFile(source: source, problem: "invalid embedding dimension \(dim)")
        }
        if alignment != IndexHeader.vectorAlignmentV1 {
            throw DeepProductError.indexFile(source: source, problem: "vector alignment \(alignment) is not \(IndexHeader.vectorAlignmentV1) as format v1 requires")
        }
        guard count < (1 << 53), fileSize < (1 << 53) else {
            throw DeepProductError.indexFile(source: source, problem: "header sizes are out of range for this reader")
        }
        var sections = [String: Section]()
        for (i, name) in sectionNames.enumerated() {
            let off = LE.u64(bytes, sectionTableOffset + 16 * i)
            let len = LE.u64(bytes, sectionTableOffset + 16 * i + 8)
            if len == 0 { // an empty section's offset is meaningless (docs/index-format.md): never read it
                sections[name] = Section(offset: 0, length: 0)
                continue
            }
            guard off < (1 << 53), len < (1 << 53) else {
                throw DeepProductError.indexFile(source: source, problem: "header sizes are out of range for this reader")
            }
            sections[name] = Section(offset: Int(off), length: Int(len))
        }
        let header = IndexHeader(formatVersion: version, flags: flags, dim: dim, storage: storage, metric: "cosine",
                                 vectorAlignment: alignment, count: Int(count), fileSize: Int(fileSize), sections: sections)
        if actualSize < header.fileSize {
            throw DeepProductError.truncatedIndex(source: source, problem: "truncated: \(actualSize) bytes on disk but the header says \(header.fileSize) (an interrupted copy or download?)")
        }
        if actualSize > header.fileSize {
            throw DeepProductError.indexFile(source: source, problem: "\(actualSize - header.fileSize) unexpected bytes after the end of the index")
        }
        try header.checkSections(source: source)
        return header
    }

    private func checkSections(source: String?) throws {
        let itemsize = storage == "int8" ? 1 : 4
        let expected: [(String, Int)] = [("scales", storage == "int8" ? 4 * dim : 0), ("id_offsets", 4 * (count + 1)),
                                         ("vectors", count * dim * itemsize)]
        for (name, length) in expected where sections[name]!.length != length {
            throw DeepProductError.indexFile(source: source, problem: "\(name) section is \(sections[name]!.length) bytes, expected \(length)")
        }
        let limit = fileSize - IndexHeader.trailerSize
        for name in IndexHeader.sectionNames {
            let s = sections[name]!
            if s.length > 0 && (s.offset < IndexHeader.headerSize || s.end > limit) {
                throw DeepProductError.indexFile(source: source, problem: "\(name) section [\(s.offset), \(s.end)) lies outside the file body")
            }
        }
        if count > 0 && vectorAlignment > 0 && sections["vectors"]!.offset % vectorAlignment != 0 {
            throw DeepProductError.indexFile(source: source, problem: "vector block is not aligned as the header states")
        }
        // Non-empty sections: 8-aligned and disjoint, in the SDK's order (offset, end, name).
        let used = IndexHeader.sectionNames.filter { sections[$0]!.length > 0 }.sorted { a, b in
            let sa = sections[a]!, sb = sections[b]!
            if sa.offset != sb.offset { return sa.offset < sb.offset }
            if sa.end != sb.end { return sa.end < sb.end }
            return a < b
        }
        for name in used where sections[name]!.offset % IndexHeader.sectionAlignment != 0 {
            throw DeepProductError.indexFile(source: source, problem: "\(name) section offset \(sections[name]!.offset) is not a multiple of \(IndexHeader.sectionAlignment)")
        }
        for k in used.indices.dropFirst() where sections[used[k]]!.offset < sections[used[k - 1]]!.end {
            throw DeepProductError.indexFile(source: source, problem: "sections \(used[k - 1]) and \(used[k]) overlap")
        }
    }
}

/// Little-endian reads from a byte array (no alignment assumptions).
enum LE {
    static func u16(_ b: [UInt8], _ o: Int) -> UInt16 {
        UInt16(b[o]) | UInt16(b[o + 1]) << 8
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }

    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 {
        UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32
    }

    static func f32(_ b: [UInt8], _ o: Int) -> Float {
        Float(bitPattern: u32(b, o))
    }
}
