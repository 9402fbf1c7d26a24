import Foundation

/// The index's metadata filter (docs/index-format.md, "Search semantics"): an item is eligible when,
/// for every field, its value JSON-equals the filter's value, or any element of it when the filter's
/// value is an array. Items lacking the field are not eligible.
public enum MetadataFilter {
    public static func matches(_ item: [String: Any], _ filter: [String: Any]) -> Bool {
        for (field, want) in filter {
            guard let have = item[field] else { return false }
            if let options = want as? [Any] {
                if !options.contains(where: { jsonEquals(have, $0) }) { return false }
            } else if !jsonEquals(have, want) {
                return false
            }
        }
        return true
    }

    /// JSON equality: numbers numerically, strings by code points, booleans and null as themselves.
    /// (JSONSerialization gives NSNumber for both numbers and booleans; see `isBool`.)
    public static func jsonEquals(_ a: Any, _ b: Any) -> Bool {
        if a is NSNull || b is NSNull { return a is NSNull && b is NSNull }
        if let x = a as? NSNumber, let y = b as? NSNumber {
            let xb = isBool(x), yb = isBool(y)
            if xb || yb { return xb && yb && x.boolValue == y.boolValue }
            return x.doubleValue == y.doubleValue
        }
        if let x = a as? String, let y = b as? String {
            return Array(x.unicodeScalars) == Array(y.unicodeScalars)
        }
        if let x = a as? [Any], let y = b as? [Any] {
            return x.count == y.count && zip(x, y).allSatisfy { jsonEquals($0, $1) }
        }
        if let x = a as? [String: Any], let y = b as? [String: Any] {
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { jsonEquals(value, $0) } ?? false }
        }
        if let x = a as? Bool, let y = b as? Bool { return x == y }
        return false
    }

    private static let boolType = type(of: NSNumber(value: true))

    /// true/false from JSON: on Apple platforms a distinct NSNumber subclass (__NSCFBoolean), on
    /// swift-corelibs-foundation a plain NSNumber whose objCType is "c" (JSON never yields Int8).
    static func isBool(_ n: NSNumber) -> Bool {
        type(of: n) == boolType && String(cString: n.objCType) == "c"
    }
}
