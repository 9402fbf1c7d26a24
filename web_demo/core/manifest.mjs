// The parts of the exporter's manifest.json the demo needs (docs/manifest.md), with the errors of
// sdk_python/model_manifest.py: input contract, embedding-space id, artefact files.
export const MANIFEST_FORMAT = 'deepproduct-model-manifest';
export const MANIFEST_VERSION = 1;

const pyRepr = (v) => (v === undefined || v === null ? 'None' : typeof v === 'string' ? `'${v}'` : String(v));

export function loadManifest(text, source = 'manifest.json') {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (exc) {
    throw new Error(`${source}: not valid JSON (${exc.message})`);
  }
  if (raw?.format !== MANIFEST_FORMAT) {
    throw new Error(`${source}: not a DeepProduct model manifest (format=${pyRepr(raw?.format)})`);
  }
  const version = raw.manifest_version;
  if (!Number.isInteger(version) || version > MANIFEST_VERSION) {
    throw new Error(`${source}: manifest version ${pyRepr(version)} is newer than this SDK supports (${MANIFEST_VERSION})`);
  }
  const need = (obj, key) => {
    if (!(key in obj)) throw new Error(`${source}: missing required field '${key}'`);
    return obj[key];
  };
  const model = need(raw, 'model');
  const artefacts = (raw.artefacts || []).map((a) => ({
    file: need(a, 'file'), format: need(a, 'format'), precision: need(a, 'precision'), layout: need(a, 'layout'),
    inputName: a.input_name ?? 'image', outputName: a.output_name ?? 'embedding', sha256: a.sha256 ?? '',
  }));
  return {
    source,
    modelName: need(model, 'name'),
    modelVersion: String(need(model, 'version')),
    backbone: need(model, 'backbone'),
    embeddingDim: need(model, 'embedding_dim'),
    embeddingSpaceId: need(raw, 'embedding_space_id'),
    preprocessing: need(raw, 'preprocessing'),
    artefacts,
    raw,
    /** The artefact of a format ('onnx', 'tflite', 'coreml') and precision ('fp32', ...). */
    artefact(format, precision = 'fp32') {
      const a = artefacts.find((x) => x.format === format && x.precision === precision);
      if (a) return a;
      const have = artefacts.map((x) => `${x.format}/${x.precision}`).join(', ') || 'none';
      throw new Error(`${source}: no ${format}/${precision} artefact (have: ${have})`);
    },
  };
}
