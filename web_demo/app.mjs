// The demo page's glue: load the bundle (manifest, ONNX model, index), embed a chosen photo with
// onnxruntime-web (wasm), search the index, show the top products. All numerics live in core/
// (tested with `node --test` on tests/vectors/); this file only does the DOM and the runtime.
import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import { readIndex } from './core/index.mjs';
import { preprocessRgba, specFromManifest } from './core/preprocess.mjs';
import { loadManifest } from './core/manifest.mjs';

const params = new URLSearchParams(location.search);
const BUNDLE = (params.get('bundle') || 'bundle').replace(/\/$/, '');
const TOP_K = Number(params.get('k') || 8);

const $ = (id) => document.getElementById(id);
const state = { session: null, index: null, spec: null, artefact: null, query: null, thumbs: {} };

/** The bundle's thumbnail of a product: only a file name of the shape dp-search bundle writes
 * (thumbs/NNNNNN.jpg), so a hand-edited bundle.json cannot point the page anywhere else. */
const thumbnailUrl = (productId) => {
  const file = Object.hasOwn(state.thumbs, productId) ? state.thumbs[productId] : null;
  return typeof file === 'string' && /^thumbs\/\d{6}\.jpg$/.test(file) ? `${BUNDLE}/${file}` : null;
};

function setStatus(text, kind = 'ready') {
  $('status').textContent = text;
  $('status').dataset.state = kind;
}

const shortId = (id) => (id.length > 20 ? `${id.slice(0, 12)}…` : id);

async function fetchBytes(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function fetchText(path, hint = '') {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}${hint}`);
  return res.text();
}

async function load() {
  const descriptorPath = `${BUNDLE}/bundle.json`;
  const descriptor = JSON.parse(await fetchText(descriptorPath,
    ' (no demo bundle here: write one with `dp-search bundle --target web --out web_demo/bundle ...`)'));
  const manifestPath = `${BUNDLE}/${descriptor.manifest || 'manifest.json'}`;
  // The manifest is checked against the schema the bundle ships (the exporter's own file).
  const schemaPath = `${BUNDLE}/${descriptor.manifest_schema || 'manifest.schema.json'}`;
  const schema = JSON.parse(await fetchText(schemaPath, ' (re-write the bundle with this version of dp-search bundle)'));
  // Bytes, not res.text(): text() would strip a leading BOM that the JSON grammar refuses.
  const manifest = loadManifest(await fetchBytes(manifestPath), manifestPath, schema);
  state.spec = specFromManifest(manifest.preprocessing);
  // bundle.json (dp-search bundle / deepproduct.sdk.bundle) lists the model files it carries.
  const onnx = (descriptor.models || []).find((m) => m.format === 'onnx');
  state.artefact = manifest.artefact('onnx', onnx?.precision || 'fp32');
  const modelFile = onnx?.file || state.artefact.file;
  // One small catalogue image per product (dp-search bundle --thumbnail-size); optional.
  const thumbs = descriptor.thumbnails?.products;
  state.thumbs = thumbs && typeof thumbs === 'object' && !Array.isArray(thumbs) ? thumbs : {};
  const indexPath = `${BUNDLE}/${descriptor.index || 'catalogue.dpindex'}`;
  state.index = readIndex(await fetchBytes(indexPath), { source: indexPath });
  // A model/index pair from different embedding spaces gives confident nonsense: refuse it.
  state.index.requireEmbeddingSpace(manifest.embeddingSpaceId);

  ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;
  ort.env.wasm.numThreads = 1; // no cross-origin isolation needed; deterministic
  state.session = await ort.InferenceSession.create(await fetchBytes(`${BUNDLE}/${modelFile}`),
    { executionProviders: ['wasm'] });

  const categories = [...new Set(state.index.items.map((it) => it.category).filter((c) => typeof c === 'string'))].sort();
  for (const c of categories) $('category').append(new Option(c, c));
  for (const sample of descriptor.samples || []) {
    const file = typeof sample === 'string' ? sample : sample.file;
    const name = file.split('/').pop();
    const b = document.createElement('button');
    b.textContent = name;
    b.onclick = async () => searchBlob(await (await fetch(`${BUNDLE}/${file}`)).blob(), name);
    $('samples').append(b);
  }
  $('about').textContent = `Model ${manifest.modelName} ${manifest.modelVersion} (${manifest.backbone}, ${manifest.embeddingDim}-d), `
    + `space ${shortId(manifest.embeddingSpaceId)}; index ${state.index.size} images, ${state.index.storage}.`;
  setStatus(`Ready: ${state.index.size} catalogue images. Choose a photo.`);
}

/** Decodes with EXIF orientation applied and no colour/alpha conversion, like the SDK's decoder. */
async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  return { bitmap, data: ctx.getImageData(0, 0, bitmap.width, bitmap.height) };
}

async function searchBlob(blob, name) {
  try {
    setStatus(`Embedding ${name}…`, 'busy');
    const t0 = performance.now();
    const { bitmap, data } = await decode(blob);
    const size = state.spec.inputSize;
    const pixels = preprocessRgba(data.data, data.width, data.height, state.spec, 'NCHW');
    const input = new ort.Tensor('float32', pixels, [1, 3, size, size]);
    const out = await state.session.run({ [state.artefact.inputName]: input });
    state.query = out[state.artefact.outputName].data;
    const t1 = performance.now();
    showPreview(bitmap);
    render(name, t1 - t0);
  } catch (err) {
    setStatus(`Could not search ${name}: ${err.message}`, 'error');
    throw err;
  }
}

function showPreview(bitmap) {
  const c = $('preview');
  const ctx = c.getContext('2d');
  const s = Math.min(bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, (bitmap.width - s) / 2, (bitmap.height - s) / 2, s, s, 0, 0, c.width, c.height);
}

function render(name, ms) {
  if (!state.query) return;
  const category = $('category').value;
  const t0 = performance.now();
  // Distinct products (each by its best-matching image): a catalogue has several images per product.
  const hits = state.index.searchProducts(state.query, TOP_K, category ? { category } : null);
  const searchMs = performance.now() - t0;
  const body = $('results').querySelector('tbody');
  body.replaceChildren(...hits.map((h, rank) => {
    const tr = document.createElement('tr');
    tr.dataset.productId = h.productId;
    tr.dataset.score = String(h.score);
    if (rank === 0) tr.className = 'top';
    const bar = `<span class="bar" style="width:${Math.max(0, h.score) * 60}px"></span>`;
    tr.innerHTML = `<td>${rank + 1}</td><td class="thumb"></td><td></td><td></td><td class="score">${bar}${h.score.toFixed(3)}</td>`;
    const url = thumbnailUrl(h.productId);
    if (url) {
      const img = document.createElement('img');
      img.src = url;
      img.alt = h.item.title || h.productId;
      img.decoding = 'async';
      tr.children[1].append(img);
    }
    tr.children[2].textContent = h.item.title ? `${h.item.title} (${h.productId})` : h.productId;
    tr.children[3].textContent = h.item.category ?? '';
    return tr;
  }));
  $('results').dataset.state = 'done';
  $('results').dataset.query = name;
  if (ms !== undefined) setStatus(`${name}: embedded in ${ms.toFixed(0)} ms, searched ${state.index.size} images in ${searchMs.toFixed(1)} ms.`, 'done');
}

$('file').onchange = (e) => e.target.files[0] && searchBlob(e.target.files[0], e.target.files[0].name);
$('category').onchange = () => render();

load().catch((err) => {
  setStatus(`Could not load the demo bundle: ${err.message}`, 'error');
  console.error(err);
});
