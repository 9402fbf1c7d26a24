import Foundation

/// The one strict JSON grammar (docs/json.md, grammar version 1) for the manifest and the index's
/// metadata block, with the verdicts of sdk_python/jsonio.py and the JS and JVM cores (pinned by
/// the shared corpus tests/vectors/json/).
///
/// Why our own parser and not JSONSerialization: its verdicts are not the grammar's and differ
/// between Apple's and swift-corelibs' Foundation (big exponents, duplicate keys, lone surrogates,
/// top-level scalars, nesting depth). Here every rule is explicit: RFC 8259 only; numbers must be
/// finite doubles (no `01`, `1.`, `1e400`, NaN or Infinity; `1e-400` reads as 0); no lone
/// surrogates; no leading BOM; strict UTF-8; duplicate keys refused (compared by code points, not
/// by Swift's canonical equivalence); nesting at most `maxDepth`. The recursion is bounded by
/// that depth, so hostile input cannot overflow the stack.
///
/// Values are what JSONSerialization gives, so existing readers keep working: `[String: Any]`,
/// `[Any]`, `String`, `NSNumber` (Int64 for integers that fit, else Double; true/false as the
/// boolean NSNumber that `MetadataFilter.isBool` recognises) and `NSNull`.
public enum StrictJSON {
    /// Version of the grammar in docs/json.md.
    public static let grammarVersion = 1
    /// Deepest array/object nesting accepted (`[[1]]` is depth 2); the Python SDK's MAX_JSON_DEPTH.
    public static let maxDepth = 64

    /// Text outside the grammar; `message` is one line.
    public struct Failure: Error, LocalizedError, CustomStringConvertible {
        public let message: String
        public var description: String { message }
        public var errorDescription: String? { message }
    }

    /// Parses one JSON document from UTF-8 bytes (decoded strictly; a leading BOM is refused).
    public static func parse(_ data: Data) throws -> Any {
        try parse(bytes: [UInt8](data))
    }

    /// Parses one JSON document from UTF-8 bytes.
    public static func parse(bytes: [UInt8]) throws -> Any {
        if !validUTF8(bytes) {
            throw Failure(message: "invalid JSON: not valid UTF-8")
        }
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
            throw Failure(message: "invalid JSON at offset 0: starts with a byte-order mark (U+FEFF), which this grammar refuses")
        }
        var parser = Parser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        if parser.pos != bytes.count {
            throw parser.failure("unexpected text after the JSON value")
        }
        return value
    }

    /// Parses a string (its UTF-8 form).
    public static func parse(text: String) throws -> Any {
        try parse(bytes: Array(text.utf8))
    }

    /// Strict UTF-8 (no overlong forms, no surrogates): the one check the index reader and the JSON
    /// parser share, over any byte sequence (an array or a slice of the index file).
    static func validUTF8<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var it = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var pos = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        func failure(_ problem: String) -> Failure {
            Failure(message: "invalid JSON at offset \(pos): \(problem)")
        }

        mutating func skipSpace() {
            while pos < bytes.count {
                let c = bytes[pos]
                if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D {
                    pos += 1
                } else {
                    break
                }
            }
        }

        func peek() throws -> UInt8 {
            guard pos < bytes.count else { throw failure("unexpected end of input") }
            return bytes[pos]
        }

        mutating func literal(_ word: String, _ value: Any) throws -> Any {
            let w = Array(word.utf8)
            guard pos + w.count <= bytes.count, Array(bytes[pos..<(pos + w.count)]) == w else {
                throw failure("expected \(word)")
            }
            pos += w.count
            return value
        }

        /// `depth`: containers already open around this value.
        mutating func value(depth: Int) throws -> Any {
            let c = try peek()
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                if depth >= StrictJSON.maxDepth {
                    throw failure("nested deeper than \(StrictJSON.maxDepth) levels")
                }
                if c == UInt8(ascii: "{") {
                    return try object(depth: depth + 1)
                }
                return try array(depth: depth + 1)
            case UInt8(ascii: "\""):
                return String(decoding: try string(), as: UTF8.self)
            case UInt8(ascii: "t"):
                return try literal("true", NSNumber(value: true))
            case UInt8(ascii: "f"):
                return try literal("false", NSNumber(value: false))
            case UInt8(ascii: "n"):
                return try literal("null", NSNull())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try number()
            default:
                throw failure("unexpected character")
            }
        }

        /// After one element: true at the closing bracket, false after a comma.
        mutating func closes(_ close: UInt8) throws -> Bool {
            skipSpace()
            let c = try peek()
            if c == close {
                pos += 1
                return true
            }
            if c != UInt8(ascii: ",") {
                throw failure("expected ',' or '\(Character(Unicode.Scalar(close)))'")
            }
            pos += 1
            return false
        }

        /// `{...}` or `[...]` after its opening byte: `member` reads one member each time round,
        /// `closes` takes the comma or the closing byte. One loop for both containers.
        mutating func members(closing: UInt8, _ member: (inout Parser) throws -> Void) throws {
            pos += 1
            skipSpace()
            if try peek() == closing {
                pos += 1
                return
            }
            repeat {
                skipSpace()
                try member(&self)
            } while try !closes(closing)
        }

        mutating func object(depth: Int) throws -> [String: Any] {
            var out = [String: Any]()
            // Keys compared by their UTF-8 bytes (code points), as Python, JS and the JVM compare
            // them: Swift's String == would call "é" and "e\u{301}" the same key.
            var seen = Set<[UInt8]>()
            try members(closing: UInt8(ascii: "}")) { p in
                guard try p.peek() == UInt8(ascii: "\"") else { throw p.failure("expected a string key") }
                let keyAt = p.pos
                let key = try p.string()
                if !seen.insert(key).inserted {
                    p.pos = keyAt
                    throw p.failure("duplicate key")
                }
                p.skipSpace()
                guard try p.peek() == UInt8(ascii: ":") else { throw p.failure("expected ':'") }
                p.pos += 1
                p.skipSpace()
                out[String(decoding: key, as: UTF8.self)] = try p.value(depth: depth)
            }
            return out
        }

        mutating func array(depth: Int) throws -> [Any] {
            var out = [Any]()
            try members(closing: UInt8(ascii: "]")) { p in out.append(try p.value(depth: depth)) }
            return out
        }

        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= bytes.count else { throw failure("bad \\u escape (four hex digits)") }
            var v: UInt32 = 0
            for i in at..<(at + 4) {
                let c = bytes[i]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: throw failure("bad \\u escape (four hex digits)")
                }
                v = v * 16 + UInt32(d)
            }
            return v
        }

        /// Past a string starting at its quote; returns its content as UTF-8 bytes (escapes decoded).
        mutating func string() throws -> [UInt8] {
            pos += 1
            var out = [UInt8]()
            while true {
                let c = try peek()
                if c == UInt8(ascii: "\"") {
                    pos += 1
                    return out
                }
                if c < 0x20 {
                    throw failure("control character in string")
                }
                if c != UInt8(ascii: "\\") {
                    out.append(c)  // the whole text is valid UTF-8: raw bytes need no check
                    pos += 1
                    continue
                }
                pos += 1
                let e = try peek()
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var u = try hex4(pos)
                    pos += 4
                    if u >= 0xDC00 && u <= 0xDFFF {
                        throw failure("lone surrogate in a string")
                    }
                    if u >= 0xD800 && u <= 0xDBFF {
                        // Only an escaped low surrogate may follow: together they are one character.
                        guard pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                            throw failure("lone surrogate in a string")
                        }
                        let low = try hex4(pos + 2)
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw failure("lone surrogate in a string") }
                        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                        pos += 6
                    }
                    guard let scalar = Unicode.Scalar(u) else { throw failure("lone surrogate in a string") }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    pos -= 1
                    throw failure("bad escape")
                }
            }
        }

        func digitAt(_ i: Int) -> Bool {
            i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
        }

        mutating func digits(_ what: String) throws {
            guard digitAt(pos) else { throw failure("bad number: \(what) needs a digit") }
            while digitAt(pos) {
                pos += 1
            }
        }

        /// RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and a finite double.
        mutating func number() throws -> NSNumber {
            let start = pos
            if bytes[pos] == UInt8(ascii: "-") {
                pos += 1
            }
            var integral = true
            if pos < bytes.count && bytes[pos] == UInt8(ascii: "0") {
                pos += 1  // a leading 0 stands alone: "01" ends at "0", then fails as trailing text
            } else {
                try digits("the integer part")
            }
            if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
                integral = false
                pos += 1
                try digits("a fraction")
            }
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
                integral = false
                pos += 1
                if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) {
                    pos += 1
                }
                try digits("an exponent")
            }
            let token = String(decoding: bytes[start..<pos], as: UTF8.self)
            if integral, let i = Int64(token) {
                return NSNumber(value: i)
            }
            if let d = Double(token) {
                if d.isFinite {
                    return NSNumber(value: d)
                }
            } else if !StrictJSON.overflows(token) {
                // Some Swift versions give nil (strtod's ERANGE) for an underflow: it reads as 0.
                return NSNumber(value: token.hasPrefix("-") ? -0.0 : 0.0)
            }
            pos = start
            throw failure("number \(token.prefix(40)) is out of range (not a finite double)")
        }
    }

    /// For a grammatical number token that Double(_:) could not represent: true when its
    /// magnitude is too large (overflow), false when too small (underflow to 0). The decimal
    /// exponent of its first significant digit decides; the exponent saturates, so a huge one
    /// cannot overflow an Int.
    static func overflows(_ token: String) -> Bool {
        var mantissa = Substring(token)
        var exponent = 0
        if let e = token.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = token[..<e]
            var sign = 1
            for ch in token[token.index(after: e)...] {
                if ch == "-" {
                    sign = -1
                } else if let d = ch.wholeNumberValue {
                    exponent = min(exponent * 10 + d, 1_000_000)
                }
            }
            exponent *= sign
        }
        let parts = mantissa.drop(while: { $0 == "-" }).split(separator: ".", omittingEmptySubsequences: false)
        let whole = parts.first.map { $0.drop(while: { $0 == "0" }) } ?? ""
        if !whole.isEmpty {
            return exponent + whole.count > 0
        }
        let fraction = parts.count > 1 ? parts[1] : ""
        guard let first = fraction.firstIndex(where: { $0 != "0" }) else { return false }  // zero
        return exponent - fraction.distance(from: fraction.startIndex, to: first) > 0
    }
}
