// The exporter's manifest.json (docs/manifest.md), read strictly with the errors of
// sdk_python/model_manifest.py: the one schema (export/manifest.schema.json, shipped in every
// bundle as manifest.schema.json) enforced, nothing required filled in by a default, artefact
// paths confined to the model folder, and only the preprocessing this core implements.
import { parseJson } from './json.mjs';
import { check, jsonEqual, SchemaViolation } from './schema.mjs';

export const MANIFEST_FORMAT = 'deepproduct-model-manifest';
export const MANIFEST_VERSION = 1;
/** What the core's preprocessing implements (docs/preprocessing.md); anything else is refused. */
export const SUPPORTED_PREPROCESSING = { colour_order: 'RGB', crop: 'centre', value_range: [0, 1] };

/** A manifest that cannot be used; the message names the source and the field. */
export class ManifestError extends Error {
  constructor(message) { super(message); this.name = 'ManifestError'; }
}

const pyRepr = (v) => (v === undefined || v === null ? 'None' : typeof v === 'string' ? `'${v}'` : JSON.stringify(v));

/** Throws unless `value` is a plain relative path inside its folder (no '..', no '/x', no 'C:'). */
export function confinedRelativePath(value, what) {
  const parts = value.split('/');
  if (!value || value.startsWith('/') || value.includes('\\') || value.includes('\0') || parts[0].includes(':')
      || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new ManifestError(`${what} ${pyRepr(value)} is not a plain relative path inside the model folder`);
  }
  return value;
}

/**
 * @param {string|Uint8Array|ArrayBuffer} text manifest.json: its bytes (decoded strictly as UTF-8, a
 *   leading BOM refused as docs/json.md says) or its text
 * @param {string} source its name, for messages
 * @param {object} schema the parsed manifest.schema.json (required: there is no built-in copy)
 */
export function loadManifest(text, source, schema) {
  if (!schema || typeof schema !== 'object') throw new ManifestError(`${source}: no manifest schema given (bundle's manifest.schema.json)`);
  let raw;
  try {
    raw = parseJson(text);
  } catch (exc) {
    throw new ManifestError(`${source}: not valid JSON (${exc.message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ManifestError(`${source}: (top level): a model manifest is a JSON object, not ${Array.isArray(raw) ? 'list' : typeof raw}`);
  }
  if (raw.format !== MANIFEST_FORMAT) {
    throw new ManifestError(`${source}: not a DeepProduct model manifest (format=${pyRepr(raw.format)})`);
  }
  const version = raw.manifest_version;
  if (Number.isInteger(version) && version > MANIFEST_VERSION) {
    throw new ManifestError(`${source}: manifest version ${version} is newer than this SDK supports (${MANIFEST_VERSION})`);
  }
  if (version !== MANIFEST_VERSION) {
    throw new ManifestError(`${source}: manifest_version: ${pyRepr(version)} is not a valid version (this SDK reads the integer ${MANIFEST_VERSION})`);
  }
  try {
    check(raw, schema);
  } catch (e) {
    if (e instanceof SchemaViolation) throw new ManifestError(`${source}: ${e.field}: ${e.problem} (manifest schema)`);
    throw e;
  }
  const pre = raw.preprocessing;
  for (const [key, want] of Object.entries(SUPPORTED_PREPROCESSING)) {
    if (!jsonEqual(pre[key], want)) {
      throw new ManifestError(`${source}: preprocessing.${key}: ${pyRepr(pre[key])} is not supported by this SDK (only ${pyRepr(want)}; docs/preprocessing.md)`);
    }
  }
  if (pre.resize_shorter < pre.input_size) {
    throw new ManifestError(`${source}: preprocessing.resize_shorter: ${pre.resize_shorter} is smaller than input_size ${pre.input_size}`);
  }
  const confine = (value, field) => {
    try {
      confinedRelativePath(value, field.endsWith('.file') ? 'file' : 'path');
    } catch (e) {
      throw new ManifestError(`${source}: ${field}: ${e.message}`);
    }
  };
  raw.artefacts.forEach((a, i) => confine(a.file, `artefacts[${i}].file`));
  raw.files.forEach((f, i) => confine(f.path, `files[${i}].path`));
  const artefacts = raw.artefacts.map((a) => ({
    file: a.file, format: a.format, precision: a.precision, layout: a.layout,
    inputName: a.input_name, outputName: a.output_name, sha256: a.sha256,
  }));
  return {
    source,
    modelName: raw.model.name,
    modelVersion: raw.model.version,
    backbone: raw.model.backbone,
    embeddingDim: raw.model.embedding_dim,
    embeddingSpaceId: raw.embedding_space_id,
    preprocessing: pre,
    artefacts,
    raw,
    /** The artefact of a format ('onnx', 'tflite', 'coreml') and precision ('fp32', ...). */
    artefact(format, precision = 'fp32') {
      const a = artefacts.find((x) => x.format === format && x.precision === precision);
      if (a) return a;
      const have = artefacts.map((x) => `${x.format}/${x.precision}`).join(', ') || 'none';
      throw new ManifestError(`${source}: no ${format}/${precision} artefact (have: ${have})`);
    },
  };
}
