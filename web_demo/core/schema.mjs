// A small JSON Schema (draft 2020-12) checker for the keywords export/manifest.schema.json uses;
// a port of sdk_python/json_schema.py, with the same field paths and words, so every reader
// enforces the one schema file (the bundle ships it as manifest.schema.json).
const ANNOTATIONS = new Set(['$schema', '$id', '$defs', 'title', 'description', 'format', '$comment', 'default', 'examples']);
const HANDLED = new Set(['type', 'enum', 'const', 'required', 'properties', 'additionalProperties', 'items',
  'minItems', 'maxItems', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'pattern',
  '$ref', 'allOf', 'if', 'then', 'else']);

export class SchemaViolation extends Error {
  constructor(field, problem) {
    super(`${field || '(top level)'}: ${problem}`);
    this.name = 'SchemaViolation';
    this.field = field || '(top level)';
    this.problem = problem;
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function typeOk(v, t) {
  switch (t) {
    case 'object': return isObject(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'number': return typeof v === 'number';
    default: throw new Error(`unknown JSON Schema type '${t}'`);
  }
}

/** JSON equality (numbers by value, true is not 1, objects by keys and values). */
export function jsonEqual(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return a === b;
}

const show = (v) => {
  const t = JSON.stringify(v) ?? String(v);
  return t.length <= 60 ? t : `${t.slice(0, 57)}...`;
};
const join = (path, key) => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key);

/** Throws SchemaViolation at the first place `value` breaks `schema`. */
export function check(value, schema, root = schema, path = '') {
  for (const k of Object.keys(schema)) {
    if (!HANDLED.has(k) && !ANNOTATIONS.has(k)) throw new Error(`schema keyword '${k}' not supported by this checker`);
  }
  if ('$ref' in schema) {
    if (!schema.$ref.startsWith('#/')) throw new Error(`only local $ref is supported, got '${schema.$ref}'`);
    check(value, schema.$ref.slice(2).split('/').reduce((node, part) => node[part], root), root, path);
  }
  if ('type' in schema) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeOk(value, t))) throw new SchemaViolation(path, `${show(value)} is not of type ${types.join(' or ')}`);
  }
  if ('const' in schema && !jsonEqual(value, schema.const)) throw new SchemaViolation(path, `${show(value)} is not ${show(schema.const)}`);
  if ('enum' in schema && !schema.enum.some((e) => jsonEqual(value, e))) {
    throw new SchemaViolation(path, `${show(value)} is not one of ${show(schema.enum)}`);
  }
  if (typeof value === 'number') {
    const bounds = [['minimum', (v, b) => v < b], ['maximum', (v, b) => v > b],
      ['exclusiveMinimum', (v, b) => v <= b], ['exclusiveMaximum', (v, b) => v >= b]];
    for (const [key, fails] of bounds) {
      if (key in schema && fails(value, schema[key])) throw new SchemaViolation(path, `${value} breaks ${key} ${schema[key]}`);
    }
  }
  if (typeof value === 'string') {
    if ([...value].length < (schema.minLength ?? 0)) throw new SchemaViolation(path, `${show(value)} is shorter than ${schema.minLength} characters`);
    if ('pattern' in schema && !new RegExp(schema.pattern, 'u').test(value)) {
      throw new SchemaViolation(path, `${show(value)} does not match '${schema.pattern}'`);
    }
  }
  if (Array.isArray(value)) {
    if (value.length < (schema.minItems ?? 0)) throw new SchemaViolation(path, `has ${value.length} items, fewer than ${schema.minItems}`);
    if ('maxItems' in schema && value.length > schema.maxItems) throw new SchemaViolation(path, `has ${value.length} items, more than ${schema.maxItems}`);
    if ('items' in schema) value.forEach((item, i) => check(item, schema.items, root, join(path, i)));
  }
  if (isObject(value)) {
    for (const key of schema.required ?? []) {
      if (!Object.hasOwn(value, key)) throw new SchemaViolation(join(path, key), 'required field is missing');
    }
    const props = schema.properties ?? {};
    for (const [key, v] of Object.entries(value)) {
      if (Object.hasOwn(props, key)) check(v, props[key], root, join(path, key));
      else if (schema.additionalProperties === false) throw new SchemaViolation(join(path, key), 'unexpected field');
      else if (isObject(schema.additionalProperties)) check(v, schema.additionalProperties, root, join(path, key));
    }
  }
  for (const sub of schema.allOf ?? []) check(value, sub, root, path);
  if ('if' in schema) {
    let matched = true;
    try {
      check(value, schema.if, root, path);
    } catch (e) {
      if (!(e instanceof SchemaViolation)) throw e;
      matched = false;
    }
    const branch = matched ? schema.then : schema.else;
    if (branch) check(value, branch, root, path);
  }
}

// The strict JSON grammar (docs/json.md) lives in json.mjs; re-exported for older importers.
export { MAX_JSON_DEPTH, parseJson as parseStrictJson } from './json.mjs';
