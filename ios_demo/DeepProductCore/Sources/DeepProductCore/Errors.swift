import Foundation

/// Errors of the core, mirroring the Python SDK's classes (sdk_python/index_format.py, index.py):
/// the same damage gives the same kind and the same words on every platform.
public enum DeepProductError: Error, Equatable, CustomStringConvertible {
    /// A gallery index that cannot be used (IndexFileError).
    case indexFile(source: String?, problem: String)
    /// The file is shorter than its header says (TruncatedIndexError).
    case truncatedIndex(source: String?, problem: String)
    /// A CRC-32 does not match (ChecksumError).
    case checksum(source: String?, problem: String)
    /// Written by a newer DeepProduct than this reader understands (UnsupportedVersionError).
    case unsupportedVersion(source: String?, problem: String)
    /// The index was built by a different model than the one querying it (EmbeddingSpaceMismatchError).
    case embeddingSpaceMismatch(source: String?, problem: String)
    /// Query length differs from the index dimension (QueryDimensionError, an IndexFileError).
    case queryDimension(source: String?, problem: String)
    case invalidQuery(String)
    case invalidSpec(String)
    case invalidImage(String)
    case invalidManifest(String)

    /// The message without the source prefix (what tests compare with the Python SDK's).
    public var problem: String {
        switch self {
        case let .indexFile(_, p), let .truncatedIndex(_, p), let .checksum(_, p),
             let .unsupportedVersion(_, p), let .embeddingSpaceMismatch(_, p), let .queryDimension(_, p):
            return p
        case let .invalidQuery(m), let .invalidSpec(m), let .invalidImage(m), let .invalidManifest(m):
            return m
        }
    }

    /// The Python SDK's exception class name for this error.
    public var pythonClass: String {
        switch self {
        case .indexFile: return "IndexFileError"
        case .truncatedIndex: return "TruncatedIndexError"
        case .checksum: return "ChecksumError"
        case .unsupportedVersion: return "UnsupportedVersionError"
        case .embeddingSpaceMismatch: return "EmbeddingSpaceMismatchError"
        case .queryDimension: return "QueryDimensionError"
        case .invalidManifest: return "ManifestError"
        default: return "ValueError"
        }
    }

    public var description: String {
        switch self {
        case let .indexFile(s, p), let .truncatedIndex(s, p), let .checksum(s, p),
             let .unsupportedVersion(s, p), let .embeddingSpaceMismatch(s, p), let .queryDimension(s, p):
            return s.map { "\($0): \(p)" } ?? p
        default:
            return problem
        }
    }
}

/// Texts of sdk_python/gallery_index.py (check_embedding_space, prepare_queries, normalize_rows, search).
enum Messages {
    static func spaceMismatch(_ indexSpace: String, _ modelSpace: String) -> String {
        "built in embedding space '\(indexSpace)' but the querying model produces '\(modelSpace)'; rebuild the index with this model (dp-search build)"
    }

    static func queryDimension(_ got: Int, _ dim: Int) -> String {
        "query has dimension \(got) but the index holds \(dim)-dimensional embeddings (wrong model?)"
    }

    static let nonFiniteQuery = "querys contain NaN or infinity"
    static let zeroQuery = "query 0 is all zeros; cannot normalise"

    static func badK(_ k: Int) -> String {
        "k must be at least 1, got \(k)"
    }

    /// Python's repr() of a bytes object.
    static func pyBytes(_ bytes: [UInt8]) -> String {
        let hasSingle = bytes.contains(0x27)
        let hasDouble = bytes.contains(0x22)
        let quote: UInt8 = hasSingle && !hasDouble ? 0x22 : 0x27
        var s = "b" + String(UnicodeScalar(quote))
        for c in bytes {
            if c == quote || c == 0x5C {
                s += "\\" + String(UnicodeScalar(c))
            } else if c == 0x09 {
                s += "\\t"
            } else if c == 0x0A {
                s += "\\n"
            } else if c == 0x0D {
                s += "\\r"
            } else if c < 0x20 || c >= 0x7F {
                s += String(format: "\\x%02x", c)
            } else {
                s += String(UnicodeScalar(c))
            }
        }
        return s + String(UnicodeScalar(quote))
    }
}
