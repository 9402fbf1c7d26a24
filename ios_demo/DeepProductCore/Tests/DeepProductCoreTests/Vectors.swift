import DeepProductCore
import Foundation

/// Access to the shared tests/vectors/ (README there): DEEPPRODUCT_VECTORS, or found relative to
/// this source file (ios_demo/DeepProductCore/Tests/DeepProductCoreTests -> repo root).
enum Vectors {
    static let root: URL = {
        if let dir = ProcessInfo.processInfo.environment["DEEPPRODUCT_VECTORS"] {
            return URL(fileURLWithPath: dir)
        }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("tests/vectors")
    }()

    static func data(_ relative: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(relative))
    }

    static func json(_ relative: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: data(relative)) as? [String: Any] else {
            throw DeepProductError.invalidManifest("\(relative): not a JSON object")
        }
        return object
    }

    /// Raw little-endian float32 file.
    static func f32(_ relative: String) throws -> [Float] {
        let bytes = [UInt8](try data(relative))
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    static func index(_ relative: String) throws -> GalleryIndex {
        try GalleryIndex(data: data(relative), source: relative)
    }

    /// A JSON array of numbers as Float (JSON numbers written from float32 round-trip exactly).
    static func floats(_ value: Any?) -> [Float] {
        (value as? [NSNumber] ?? []).map { Float($0.doubleValue) }
    }

    static func doubles(_ value: Any?) -> [Double] {
        (value as? [NSNumber] ?? []).map { $0.doubleValue }
    }

    static func ints(_ value: Any?) -> [Int] {
        (value as? [NSNumber] ?? []).map { $0.intValue }
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "length \(a.count) != \(b.count)")
        return zip(a, b).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
    }
}
