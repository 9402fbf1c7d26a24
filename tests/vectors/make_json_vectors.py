"""The shared JSON grammar corpus in ``json/``: one small file per case, and ``json/expected.json``.

    python tests/vectors/make_json_vectors.py [--out DIR]

docs/json.md defines the one strict JSON grammar that index metadata and model manifests are
read with; every core (the Python SDK's ``jsonio``, the JavaScript, JVM and Swift demo cores)
reads each file here and must reach the verdict in ``expected.json``: ``accept`` or ``refuse``.
The files are raw bytes (some are deliberately not UTF-8), written by this script alone so that
the corpus is reproducible; the Python test checks that a fresh run gives the committed bytes.
Needs only the standard library.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

GRAMMAR_VERSION = 1
MAX_DEPTH = 64

#: (file stem, bytes, verdict, why). Text cases are str (written as UTF-8); bytes are written as-is.
CASES: list[tuple[str, str | bytes, str, str]] = [
    # --- ordinary documents -------------------------------------------------------------------
    ("object_simple", '{"a": 1, "b": [true, false, null], "c": "x", "d": {"e": -2.5}}', "accept",
     "an ordinary object"),
    ("object_empty", "{}", "accept", "empty object"),
    ("array_empty", "[]", "accept", "empty array"),
    ("array_mixed", '[1, "two", 3.0, {"four": [4]}, [], {}, null, true, false]', "accept",
     "every value kind in one array"),
    ("top_string", '"hello"', "accept", "RFC 8259: any value may be the top level"),
    ("top_number", "42", "accept", "a top-level number"),
    ("top_null", "null", "accept", "a top-level literal"),
    ("whitespace_around", ' \t\r\n{"a" : [ 1 , 2 ] }\r\n\t ', "accept",
     "space, tab, CR and LF are whitespace before, inside and after the value"),
    ("metadata_like", json.dumps({
        "index": {"created_at": "2024-01-01T00:00:00Z", "model": "demo", "images": 3},
        "items": [{"title": "Mug \u00e9", "price": 12.0, "in_stock": True, "tags": ["a", "b"]},
                  {"title": "Shoe", "price": 5, "in_stock": False, "category": None},
                  {"title": "\u4e2d\u6587 \U0001f600", "url": "https://example.com/x?y=1&z=2"}],
    }, ensure_ascii=False, separators=(",", ":")), "accept", "the shape of a .dpindex metadata block"),
    ("keys_case_distinct", '{"a": 1, "A": 2, "a ": 3}', "accept", "keys differing in case or space are distinct"),
    # --- numbers (one row per case: the table repeats one shape by design) ------------------------
    ("number_negative_zero", "-0", "accept", "-0 is a valid number"),
    ("number_negative_zero_float", "[-0.0, 0e0, -0E-0]", "accept", "zeros with fraction and exponent"),
    ("number_exponents", "[1e10, 1E+2, 1e-2, 2.5E-3, -1.5e+3, 0.5e1]", "accept", "exponent forms"),
    ("number_1e308", "1e308", "accept", "large but finite"),
    ("number_max_double", "[1.7976931348623157e308, -1.7976931348623157e308]", "accept",
     "the largest finite double"),
    ("number_rounds_to_max_double", "1.7976931348623158e308", "accept",
     "rounds (to nearest) to the largest finite double, not to infinity"),
    ("number_underflow", "[1e-400, -1e-400, 1e-324]", "accept",
     "a non-zero value below the smallest double is accepted and reads as 0 (documented)"),
    ("number_denormal", "[5e-324, 2.2250738585072014e-308]", "accept", "subnormal and smallest normal"),
    ("number_big_integer", "[18446744073709551616, -9223372036854775809]", "accept",
     "integers beyond 64 bits are finite doubles (read as a double or exactly, per core)"),
    ("number_300_digit_integer", "1" + "0" * 300, "accept", "a 301-digit integer is 1e300, finite"),
    ("number_long_fraction", "0." + "1" * 500, "accept", "many digits are fine"),
    ("number_overflow", "1e400", "refuse", "not a finite double (Python's json would give inf)"),
    ("number_overflow_negative", "[-1e400]", "refuse", "not a finite double"),
    ("number_overflow_just", "1.8e308", "refuse", "just above the largest double"),
    ("number_overflow_integer", "1" + "0" * 400, "refuse", "a 401-digit integer is not a finite double"),
    ("number_overflow_huge_exponent", "1e99999999999999999999", "refuse", "exponent far out of range"),
    ("number_leading_zero", "[01]", "refuse", "leading zeros are not JSON"),
    ("number_leading_zero_top", "00", "refuse", "leading zeros are not JSON"),
    ("number_leading_zero_negative", "-01", "refuse", "leading zeros are not JSON"),
    ("number_trailing_dot", "[1.]", "refuse", "a fraction needs a digit"),
    ("number_trailing_dot_exponent", "1.e5", "refuse", "a fraction needs a digit"),
    ("number_leading_dot", "[.5]", "refuse", "an integer part is required"),
    ("number_plus", "[+1]", "refuse", "no leading plus"),
    ("number_minus_only", "[-]", "refuse", "a minus needs digits"),
    ("number_exponent_empty", "[1e]", "refuse", "an exponent needs digits"),
    ("number_exponent_sign_only", "[1e+]", "refuse", "an exponent needs digits"),
    ("number_hex", "[0x10]", "refuse", "no hexadecimal"),
    ("number_nan", "NaN", "refuse", "NaN is not JSON"),
    ("number_nan_in_array", "[1, NaN]", "refuse", "NaN is not JSON"),
    ("number_infinity", "[Infinity]", "refuse", "Infinity is not JSON"),
    ("number_negative_infinity", '{"a": -Infinity}', "refuse", "-Infinity is not JSON"),
    ("number_fullwidth_digit", "[1\uff11]", "refuse", "only ASCII digits"),
    # --- strings -------------------------------------------------------------------------------
    ("string_escapes", '["\\"\\\\\\/\\b\\f\\n\\r\\t"]', "accept", "every short escape"),
    ("string_unicode_escapes", '["\\u00e9\\u4E2D\\u0041"]', "accept", "\\u escapes, either case"),
    ("string_surrogate_pair", '["\\ud83d\\ude00"]', "accept", "an escaped surrogate pair is one character"),
    ("string_utf8", '["caf\u00e9 \u4e2d \U0001f600"]', "accept", "raw UTF-8, astral plane included"),
    ("string_escaped_nul", '["\\u0000"]', "accept", "U+0000 is fine when escaped"),
    ("string_raw_del", '["\x7f"]', "accept", "U+007F is not a control character in JSON's sense"),
    ("string_bom_inside", '["\ufeffx", "\\ufeff"]', "accept", "U+FEFF inside a string is an ordinary character"),
    ("string_lone_high_surrogate", '["\\ud800"]', "refuse", "an unpaired high surrogate"),
    ("string_lone_low_surrogate", '["\\udc00"]', "refuse", "an unpaired low surrogate"),
    ("string_reversed_surrogates", '["\\udc00\\ud800"]', "refuse", "low before high is not a pair"),
    ("string_high_surrogate_then_char", '["\\ud800x"]', "refuse", "a high surrogate must be followed by a low one"),
    ("string_lone_surrogate_key", '{"\\udfff": 1}', "refuse", "keys follow the same rule"),
    ("string_raw_newline", '["a\nb"]', "refuse", "raw control characters are not allowed in strings"),
    ("string_raw_tab", '["a\tb"]', "refuse", "raw control characters are not allowed in strings"),
    ("string_raw_control", '["a\x01b"]', "refuse", "raw control characters are not allowed in strings"),
    ("string_bad_escape", '["\\x41"]', "refuse", "\\x is not an escape"),
    ("string_bad_escape_upper_u", '["\\U0041"]', "refuse", "only lower-case \\u"),
    ("string_short_unicode_escape", '["\\u12"]', "refuse", "\\u needs four hex digits"),
    ("string_signed_unicode_escape", '["\\u+123"]', "refuse", "\\u needs four hex digits (no sign)"),
    ("string_unterminated", '["abc]', "refuse", "no closing quote"),
    ("string_single_quotes", "['a']", "refuse", "single quotes are not JSON"),
    # --- encoding ------------------------------------------------------------------------------
    ("bom_utf8", b"\xef\xbb\xbf{}", "refuse", "a leading byte-order mark is refused, not stripped"),
    ("bom_utf16le", "\ufeff{}".encode("utf-16-le"), "refuse", "UTF-16 is not accepted (not UTF-8)"),
    ("utf8_invalid_byte", b'["\xff"]', "refuse", "not UTF-8"),
    ("utf8_overlong", b'["\xc0\xaf"]', "refuse", "an overlong UTF-8 sequence"),
    ("utf8_truncated", b'["\xe4\xb8"]', "refuse", "a truncated UTF-8 sequence"),
    ("utf8_encoded_surrogate", b'["\xed\xa0\x80"]', "refuse", "a surrogate encoded in UTF-8 (CESU) is not UTF-8"),
    # --- structure -----------------------------------------------------------------------------
    ("empty", "", "refuse", "no value"),
    ("whitespace_only", " \n", "refuse", "no value"),
    ("trailing_comma_array", "[1, 2,]", "refuse", "no trailing commas"),
    ("trailing_comma_object", '{"a": 1,}', "refuse", "no trailing commas"),
    ("leading_comma", "[,1]", "refuse", "no elisions"),
    ("missing_comma", "[1 2]", "refuse", "elements need commas"),
    ("missing_colon", '{"a" 1}', "refuse", "members need a colon"),
    ("missing_value", '{"a": }', "refuse", "members need a value"),
    ("unquoted_key", "{a: 1}", "refuse", "keys are strings"),
    ("number_key", "{1: 1}", "refuse", "keys are strings"),
    ("unclosed_array", "[1, 2", "refuse", "truncated"),
    ("unclosed_object", '{"a": 1', "refuse", "truncated"),
    ("mismatched_brackets", "[1}", "refuse", "brackets must match"),
    ("comment_line", '// comment\n{"a": 1}', "refuse", "no comments"),
    ("comment_block", '{"a": /* c */ 1}', "refuse", "no comments"),
    ("literal_capital", "[True]", "refuse", "literals are lower case"),
    ("literal_truncated", "[tru]", "refuse", "truncated literal"),
    ("literal_undefined", "[undefined]", "refuse", "no undefined"),
    ("trailing_garbage", "{} x", "refuse", "nothing but whitespace after the value"),
    ("trailing_second_value", "{}{}", "refuse", "one value per document"),
    ("trailing_comma_top", "1,", "refuse", "one value per document"),
    ("trailing_nul", "{}\x00", "refuse", "NUL is not whitespace"),
    ("whitespace_formfeed", "\x0c{}", "refuse", "form feed is not JSON whitespace"),
    ("whitespace_nbsp", "\u00a0{}", "refuse", "U+00A0 is not JSON whitespace"),
    ("whitespace_vertical_tab", "[1,\x0b2]", "refuse", "vertical tab is not JSON whitespace"),
    # --- duplicate keys ------------------------------------------------------------------------
    ("duplicate_key", '{"a": 1, "a": 2}', "refuse", "duplicate keys are refused (every core, same verdict)"),
    ("duplicate_key_same_value", '{"a": 1, "a": 1}', "refuse", "refused even with equal values"),
    ("duplicate_key_escaped", '{"a": 1, "\\u0061": 2}', "refuse", "keys compare after unescaping"),
    ("duplicate_key_nested", '{"x": [{"k": 1, "k": 2}]}', "refuse", "at any depth"),
    ("keys_canonically_equivalent", '{"\u00e9": 1, "e\u0301": 2}', "accept",
     "keys compare by code points: precomposed and decomposed e-acute are two keys"),
    ("duplicate_key_across_objects", '[{"k": 1}, {"k": 2}, {"x": {"k": 3}}]', "accept",
     "the same key in different objects is fine"),
    # --- nesting -------------------------------------------------------------------------------
    ("nesting_64_arrays", "[" * MAX_DEPTH + "]" * MAX_DEPTH, "accept", "64 levels is the limit"),
    ("nesting_64_objects", '{"a":' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1), "accept",
     "64 levels is the limit"),
    ("nesting_64_mixed", '[{"a":' * (MAX_DEPTH // 2) + "1" + "}]" * (MAX_DEPTH // 2), "accept",
     "arrays and objects count alike"),
    ("nesting_65_arrays", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "refuse", "65 levels is too deep"),
    ("nesting_65_objects", '{"a":' * MAX_DEPTH + "{}" + "}" * MAX_DEPTH, "refuse", "65 levels is too deep"),
    ("nesting_65_in_wide", "[" + "[], " * 100 + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "]", "refuse",
     "the deepest branch counts, wherever it is"),
    ("nesting_20000", "[" * 20000 + "]" * 20000, "refuse", "far too deep: refused, never a stack overflow"),
    ("nesting_20000_unclosed", "[" * 20000, "refuse", "far too deep and truncated"),
]


def build(out: Path) -> None:
    """Write every case and expected.json into ``out``; files of earlier runs are removed."""
    out.mkdir(parents=True, exist_ok=True)
    names = [f"{stem}.json" for stem, *_ in CASES]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate case names")
    for old in out.iterdir():
        if old.is_file() and old.name != "expected.json" and old.name not in names:
            old.unlink()
    cases = {}
    for (stem, content, verdict, why), name in zip(CASES, names, strict=True):
        assert verdict in ("accept", "refuse"), stem
        data = content.encode("utf-8") if isinstance(content, str) else content
        (out / name).write_bytes(data)
        cases[name] = {"verdict": verdict, "why": why}
    expected = {
        "grammar_version": GRAMMAR_VERSION,
        "max_depth": MAX_DEPTH,
        "spec": "docs/json.md",
        "cases": cases,
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "json")
    args = parser.parse_args()
    build(args.out)
    print(f"wrote {len(CASES)} cases and expected.json to {args.out}")


if __name__ == "__main__":
    main()
