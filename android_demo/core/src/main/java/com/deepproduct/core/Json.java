package com.deepproduct.core;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one strict JSON grammar (docs/json.md, grammar version 1) for the manifest and the index's
 * metadata block, with the verdicts of sdk_python/jsonio.py and the other cores (pinned by the
 * shared corpus tests/vectors/json/).
 *
 * <p>Why our own: the core must run on a plain JVM and on old Android without {@code org.json}
 * or a third-party dependency, and every core must accept exactly the same documents: RFC 8259
 * only; numbers must be finite doubles (no {@code 01}, {@code 1.}, {@code 1e400}, NaN or
 * Infinity; {@code 1e-400} reads as 0); no lone surrogates, escaped or raw; no leading BOM;
 * duplicate keys refused; nesting at most {@link #MAX_DEPTH}. Objects become
 * {@link LinkedHashMap}, arrays {@link ArrayList}, integers {@link Long} (beyond a long:
 * {@link Double}), other numbers {@link Double}.
 */
public final class Json {
    /** Version of the grammar in docs/json.md. */
    public static final int GRAMMAR_VERSION = 1;
    private static final Charset UTF8 = Charset.forName("UTF-8");

    private final String s;
    private int pos;

    private Json(String s) {
        this.s = s;
    }

    /** Parses one JSON value; trailing non-space text is an error. */
    public static Object parse(String text) {
        Json p = new Json(text);
        if (text.length() > 0 && text.charAt(0) == '\uFEFF') {
            throw p.error("starts with a byte-order mark (U+FEFF), which this grammar refuses");
        }
        p.skipSpace();
        Object v = p.value();
        p.skipSpace();
        if (p.pos != p.s.length()) {
            throw p.error("unexpected text after the JSON value");
        }
        return v;
    }

    /**
     * Parses UTF-8 bytes (decoded strictly: invalid UTF-8 is an error; a leading BOM is kept, and so
     * refused). The form to use for a file, so that no decoder replaces bad bytes with U+FFFD.
     */
    public static Object parse(byte[] utf8) {
        return parse(decodeUtf8(utf8));
    }

    /** Strict UTF-8 decoding; IllegalArgumentException ("invalid JSON: not valid UTF-8") otherwise. */
    static String decodeUtf8(byte[] utf8) {
        try {
            return UTF8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(utf8)).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("invalid JSON: not valid UTF-8");
        }
    }

    /** Parses a JSON object (anything else is an error). */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(String text) {
        Object v = parse(text);
        if (!(v instanceof Map)) {
            throw new IllegalArgumentException("expected a JSON object");
        }
        return (Map<String, Object>) v;
    }

    /**
     * JSON equality, as Python compares parsed JSON: numbers by value (integers exactly), strings
     * by code points, booleans and null as themselves (true is not 1), arrays in order, objects as
     * key sets. The one definition for the manifest schema's const/enum and the metadata filter.
     */
    public static boolean equal(Object a, Object b) {
        if (a == null || b == null) {
            return a == b;
        }
        if (a instanceof Number && b instanceof Number) {
            if (a instanceof Long && b instanceof Long) {
                return ((Long) a).longValue() == ((Long) b).longValue();
            }
            return ((Number) a).doubleValue() == ((Number) b).doubleValue();
        }
        if (a instanceof List && b instanceof List) {
            List<?> la = (List<?>) a;
            List<?> lb = (List<?>) b;
            if (la.size() != lb.size()) {
                return false;
            }
            for (int i = 0; i < la.size(); i++) {
                if (!equal(la.get(i), lb.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Map && b instanceof Map) {
            Map<?, ?> ma = (Map<?, ?>) a;
            Map<?, ?> mb = (Map<?, ?>) b;
            if (!ma.keySet().equals(mb.keySet())) {
                return false;
            }
            for (Map.Entry<?, ?> e : ma.entrySet()) {
                if (!equal(e.getValue(), mb.get(e.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        // String/Boolean: same class and equal; a boolean never equals a number.
        return a.getClass() == b.getClass() && a.equals(b);
    }

    /** An integral JSON number as int; {@code what} names the field in the error. */
    public static int asInt(Object v, String what) {
        if (v instanceof Long) {
            long l = (Long) v;
            if (l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE) {
                return (int) l;
            }
        } else if (v instanceof Double) {
            double d = (Double) v;
            if (d == Math.rint(d) && Math.abs(d) <= Integer.MAX_VALUE) {
                return (int) d;
            }
        }
        throw new IllegalArgumentException(what + " must be an integer, got " + v);
    }

    private IllegalArgumentException error(String msg) {
        return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + msg);
    }

    private void skipSpace() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                pos++;
            } else {
                break;
            }
        }
    }

    private Object value() {
        if (pos >= s.length()) {
            throw error("unexpected end of input");
        }
        char c = s.charAt(pos);
        switch (c) {
            case '{':
                enter();
                Map<String, Object> m = object();
                depth--;
                return m;
            case '[':
                enter();
                List<Object> a = array();
                depth--;
                return a;
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", null);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw error("unexpected character '" + c + "'");
        }
    }

    /** Deepest array/object nesting accepted (the Python SDK's MAX_JSON_DEPTH); a deeper file would
     * otherwise overflow this recursive parser's stack. */
    public static final int MAX_DEPTH = 64;
    private int depth;

    private void enter() {
        if (++depth > MAX_DEPTH) {
            throw error("nested deeper than " + MAX_DEPTH + " levels");
        }
    }

    private Object literal(String word, Object v) {
        if (!s.startsWith(word, pos)) {
            throw error("expected " + word);
        }
        pos += word.length();
        return v;
    }

    /** Past an opening bracket; true when the container is empty (its closing bracket consumed). */
    private boolean opens(char close) {
        pos++;
        skipSpace();
        if (peek() == close) {
            pos++;
            return true;
        }
        return false;
    }

    /** After one element: true at the closing bracket, false after a comma; anything else is an error. */
    private boolean closes(char close) {
        skipSpace();
        char c = peek();
        pos++;
        if (c == close) {
            return true;
        }
        if (c != ',') {
            pos--;
            throw error("expected ',' or '" + close + "'");
        }
        return false;
    }

    private Map<String, Object> object() {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        if (opens('}')) {
            return m;
        }
        do {
            skipSpace();
            if (peek() != '"') {
                throw error("expected a string key");
            }
            int keyAt = pos;
            String key = string();
            if (m.containsKey(key)) {
                pos = keyAt;
                throw error("duplicate key \"" + (key.length() > 40 ? key.substring(0, 40) + "..." : key) + "\"");
            }
            skipSpace();
            expect(':');
            skipSpace();
            m.put(key, value());
        } while (!closes('}'));
        return m;
    }

    private List<Object> array() {
        List<Object> list = new ArrayList<Object>();
        if (opens(']')) {
            return list;
        }
        do {
            skipSpace();
            list.add(value());
        } while (!closes(']'));
        return list;
    }

    private char peek() {
        if (pos >= s.length()) {
            throw error("unexpected end of input");
        }
        return s.charAt(pos);
    }

    private void expect(char c) {
        if (peek() != c) {
            throw error("expected '" + c + "'");
        }
        pos++;
    }

    private String string() {
        pos++; // opening quote
        StringBuilder sb = new StringBuilder();
        while (true) {
            char c = peek();
            pos++;
            if (c == '"') {
                return sb.toString();
            }
            if (c < 0x20) {
                pos--;
                throw error("control character in string");
            }
            if (c != '\\') {
                if (Character.isLowSurrogate(c)
                        || (Character.isHighSurrogate(c) && !(pos < s.length() && Character.isLowSurrogate(s.charAt(pos))))) {
                    pos--;
                    throw error("lone surrogate in a string");
                }
                sb.append(c);
                if (Character.isHighSurrogate(c)) {
                    sb.append(s.charAt(pos++));
                }
                continue;
            }
            char e = peek();
            pos++;
            switch (e) {
                case '"': sb.append('"'); break;
                case '\\': sb.append('\\'); break;
                case '/': sb.append('/'); break;
                case 'b': sb.append('\b'); break;
                case 'f': sb.append('\f'); break;
                case 'n': sb.append('\n'); break;
                case 'r': sb.append('\r'); break;
                case 't': sb.append('\t'); break;
                case 'u': {
                    char u = hex4(pos);
                    pos += 4;
                    if (Character.isLowSurrogate(u)) {
                        throw error("lone surrogate in a string");
                    }
                    if (Character.isHighSurrogate(u)) {
                        // Only an escaped low surrogate may follow: together they are one character.
                        if (!s.startsWith("\\u", pos) || !Character.isLowSurrogate(hex4(pos + 2))) {
                            throw error("lone surrogate in a string");
                        }
                        sb.append(u);
                        u = hex4(pos + 2);
                        pos += 6;
                    }
                    sb.append(u);
                    break;
                }
                default:
                    pos--;
                    throw error("bad escape '\\" + e + "'");
            }
        }
    }

    /** Four hex digits at {@code at} as a UTF-16 unit (no sign, unlike Integer.parseInt). */
    private char hex4(int at) {
        if (at + 4 > s.length()) {
            throw error("bad \\u escape (four hex digits)");
        }
        int v = 0;
        for (int i = at; i < at + 4; i++) {
            int d = Character.digit(s.charAt(i), 16);
            if (d < 0 || s.charAt(i) > 'f') {  // Character.digit also takes non-ASCII digits
                throw error("bad \\u escape (four hex digits)");
            }
            v = v * 16 + d;
        }
        return (char) v;
    }

    private boolean digitAt(int at) {
        return at < s.length() && s.charAt(at) >= '0' && s.charAt(at) <= '9';
    }

    /** Past ASCII digits; at least one is required. */
    private void digits(String what) {
        if (!digitAt(pos)) {
            throw error("bad number: " + what + " needs a digit");
        }
        while (digitAt(pos)) {
            pos++;
        }
    }

    /** RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and a finite double. */
    private Object number() {
        int start = pos;
        if (peek() == '-') {
            pos++;
        }
        boolean integral = true;
        if (pos < s.length() && s.charAt(pos) == '0') {
            pos++;  // a leading 0 stands alone: "01" ends the number at "0" (then fails as trailing text)
        } else {
            digits("the integer part");
        }
        if (pos < s.length() && s.charAt(pos) == '.') {
            integral = false;
            pos++;
            digits("a fraction");
        }
        if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
            integral = false;
            pos++;
            if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                pos++;
            }
            digits("an exponent");
        }
        String t = s.substring(start, pos);
        try {
            if (integral) {
                try {
                    return Long.parseLong(t);
                } catch (NumberFormatException big) {
                    integral = false; // beyond a long: a double, range-checked below
                }
            }
            double d = Double.parseDouble(t);
            if (Double.isInfinite(d)) {
                pos = start;
                throw error("number " + (t.length() > 40 ? t.substring(0, 40) + "..." : t)
                        + " is out of range (not a finite double)");
            }
            return d;
        } catch (NumberFormatException ex) {
            pos = start;
            throw error("bad number '" + t + "'");
        }
    }
}
