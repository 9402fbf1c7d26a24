// The one strict JSON grammar (docs/json.md, grammar version 1), as sdk_python/jsonio.py reads it.
//
// Why not JSON.parse alone: it is laxer than the other cores in ways that change verdicts. It
// reads 1e400 as Infinity, keeps the last of duplicate keys, passes lone surrogates ("\ud800")
// through and nests as deep as the engine's stack allows. And a TextDecoder with the default
// ignoreBOM=false silently strips a leading U+FEFF. So a validating scanner runs first. It is
// iterative, so deep input can never overflow the stack. It enforces every rule of the grammar,
// and only then does JSON.parse (a superset) build the value. tests/vectors/json/ pins the
// verdicts that every core must share.

/** Version of the grammar in docs/json.md. */
export const GRAMMAR_VERSION = 1;
/** Deepest array/object nesting accepted ([[1]] is depth 2); the Python SDK's MAX_JSON_DEPTH. */
export const MAX_JSON_DEPTH = 64;

/** Text outside the grammar; the message is one line. */
export class JsonError extends Error {
  constructor(message) { super(message); this.name = 'JsonError'; }
}

// ignoreBOM: keep a leading U+FEFF so that the scanner refuses it (as Python, the JVM and Swift do)
// instead of the decoder dropping it unseen.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const isHex = (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/**
 * Throws JsonError unless `text` is one JSON document under the grammar of docs/json.md.
 * @param {string} s
 */
export function validateJson(s) {
  const n = s.length;
  let i = 0;
  const fail = (problem) => { throw new JsonError(`${problem} at offset ${i}`); };
  const ws = () => {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const hex4 = (at) => {
    if (at + 4 > n) return -1;
    for (let k = at; k < at + 4; k++) if (!isHex(s.charCodeAt(k))) return -1;
    return parseInt(s.slice(at, at + 4), 16);
  };
  // Past a string starting at s[i] === '"'; returns whether it held a backslash.
  const string = () => {
    let escaped = false;
    i++;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = s.charCodeAt(i);
      if (c === 0x22) { i++; return escaped; }
      if (c < 0x20) fail('control character in string');
      if (c === 0x5c) {
        escaped = true;
        const e = s[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) { i += 2; continue; }
        if (e !== 'u') fail('bad escape');
        const u = hex4(i + 2);
        if (u < 0) fail('bad \\u escape (four hex digits)');
        if (u >= 0xdc00 && u <= 0xdfff) fail('lone surrogate in a string');
        if (u >= 0xd800 && u <= 0xdbff) {
          const low = s[i + 6] === '\\' && s[i + 7] === 'u' ? hex4(i + 8) : -1;
          if (!(low >= 0xdc00 && low <= 0xdfff)) fail('lone surrogate in a string');
          i += 12;
        } else {
          i += 6;
        }
        continue;
      }
      if (c >= 0xdc00 && c <= 0xdfff) fail('lone surrogate in a string');
      if (c >= 0xd800 && c <= 0xdbff) {
        const low = s.charCodeAt(i + 1);
        if (!(low >= 0xdc00 && low <= 0xdfff)) fail('lone surrogate in a string');
        i += 2;
        continue;
      }
      i++;
    }
  };
  const stack = []; // one entry per open container: a Set of keys for an object, null for an array
  // After '{' or ',' in an object: a new key (refusing a duplicate), then the colon.
  const key = (keys) => {
    ws();
    if (s[i] !== '"') fail('expected a string key');
    const start = i;
    const escaped = string();
    const k = escaped ? JSON.parse(s.slice(start, i)) : s.slice(start + 1, i - 1);
    if (keys.has(k)) { i = start; fail(`duplicate key ${JSON.stringify(k).slice(0, 40)}`); }
    keys.add(k);
    ws();
    if (s[i] !== ':') fail("expected ':'");
    i++;
  };
  for (;;) {
    // A value starts here.
    ws();
    if (i >= n) fail('unexpected end of input');
    const c = s[i];
    if (c === '{' || c === '[') {
      if (stack.length >= MAX_JSON_DEPTH) fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
      i++;
      ws();
      if (s[i] === (c === '{' ? '}' : ']')) {
        i++;
      } else {
        const keys = c === '{' ? new Set() : null;
        stack.push(keys);
        if (keys) key(keys);
        continue;
      }
    } else if (c === '"') {
      string();
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(s);
      if (!m) fail('bad number');
      if (!Number.isFinite(Number(m[0]))) fail(`number ${m[0].slice(0, 40)} is out of range (not a finite double)`);
      i += m[0].length;
    } else if (s.startsWith('true', i)) {
      i += 4;
    } else if (s.startsWith('false', i)) {
      i += 5;
    } else if (s.startsWith('null', i)) {
      i += 4;
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`);
    }
    // A value ended: close containers until the next value or the end.
    for (;;) {
      ws();
      if (stack.length === 0) {
        if (i !== n) fail('unexpected text after the JSON value');
        return;
      }
      const keys = stack[stack.length - 1];
      const close = keys ? '}' : ']';
      if (s[i] === ',') {
        i++;
        if (keys) key(keys);
        break;
      }
      if (s[i] !== close) fail(i >= n ? 'unexpected end of input' : `expected ',' or '${close}'`);
      i++;
      stack.pop();
    }
  }
}

/**
 * Parses one JSON document under the grammar of docs/json.md.
 * @param {string|Uint8Array|ArrayBuffer} input text, or UTF-8 bytes (decoded strictly, BOM kept)
 * @returns {*} the value (objects are plain objects, numbers are doubles)
 * @throws {JsonError}
 */
export function parseJson(input) {
  let text = input;
  if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) {
    const bytes = input instanceof ArrayBuffer ? new Uint8Array(input)
      : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new JsonError('not valid UTF-8');
    }
  } else if (typeof input !== 'string') {
    throw new TypeError(`parseJson takes a string or bytes, not ${typeof input}`);
  }
  if (text.charCodeAt(0) === 0xfeff) throw new JsonError('starts with a byte-order mark (U+FEFF), which this grammar refuses');
  validateJson(text);
  return JSON.parse(text);
}
