// End-to-end: the demo page in headless Debian Chromium, served from localhost, runs the real
// exported ONNX model with onnxruntime-web (wasm) on query photos and must find the right
// product -- and the same top-5 ids and scores as the Python SDK (onnxruntime on CPU).
// The fixture (model, index, photos, SDK answers) is built by make_fixture.py with the
// project's Python environment and cached in e2e/.fixture/ until its inputs change.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(HERE, '..');
const REPO = resolve(WEB, '..');
const FIXTURE = join(HERE, '.fixture');
const BUNDLE = join(FIXTURE, 'bundle');
const SCREENSHOT = process.env.WEB_DEMO_SCREENSHOT || join(HERE, 'out', 'web_demo.png');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCORE_ATOL = 1e-4; // wasm vs CPU kernels: measured ~1e-6, a far bigger margin than needed

function python() {
  if (process.env.DEEPPRODUCT_PYTHON) return process.env.DEEPPRODUCT_PYTHON;
  const venv = join(REPO, '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

/** Rebuilds the fixture only when its generator changed (a hash of the scripts is stamped in it). */
function ensureFixture() {
  const inputs = [join(HERE, 'make_fixture.py'), join(HERE, 'synth_catalogue.py'), join(REPO, 'sdk_python', 'bundle.py')]
    .map((f) => readFileSync(f));
  const stamp = createHash('sha256').update(Buffer.concat(inputs)).digest('hex');
  const stampFile = join(FIXTURE, '.stamp');
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return;
  execFileSync(python(), [join(HERE, 'make_fixture.py'), FIXTURE], { stdio: 'inherit', cwd: REPO });
  writeFileSync(stampFile, stamp);
}

let server;
let browser;
let profile;

before(async () => {
  ensureFixture();
  server = await startServer({ root: WEB });
  profile = mkdtempSync(join(tmpdir(), 'dp-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1000, height: 640 },
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function openDemo(bundle) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}index.html?bundle=${bundle}`);
  await page.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { timeout: 60_000 });
  return { page, errors };
}

test('the page finds the right product for each query photo, with the SDK\'s ids and scores', async () => {
  const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')).queries;
  const { page, errors } = await openDemo('e2e/.fixture/bundle');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'ready', await page.textContent('#status'));
  for (const q of expected) {
    const name = q.sample.split('/').pop();
    await page.setInputFiles('#file', join(BUNDLE, q.sample));
    await page.waitForSelector(`#results[data-query="${name}"]`, { timeout: 60_000 });
    const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => ({ id: tr.dataset.productId, score: Number(tr.dataset.score) })));
    assert.equal(rows[0].id, q.product_id, `top-1 for ${name}`);
    assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, `distinct products for ${name}`);
    for (let i = 0; i < q.top.length; i++) {
      assert.equal(rows[i].id, q.top[i].product_id, `rank ${i + 1} for ${name}`);
      assert.ok(Math.abs(rows[i].score - q.top[i].score) < SCORE_ATOL,
        `score at rank ${i + 1} for ${name}: browser ${rows[i].score}, SDK ${q.top[i].score}`);
    }
  }
  // Every result shows its product's catalogue thumbnail from the bundle (loaded, not broken), and
  // the top-1's thumbnail is the one bundle.json names for that product.
  await page.waitForFunction(() => [...document.querySelectorAll('#results tbody tr td.thumb img')]
    .every((img) => img.complete && img.naturalWidth > 0));
  const thumbs = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => {
    const img = tr.querySelector('td.thumb img');
    return img ? { src: img.getAttribute('src'), width: img.naturalWidth } : null;
  }));
  const bundleJson = JSON.parse(readFileSync(join(BUNDLE, 'bundle.json'), 'utf8'));
  assert.ok(thumbs.every((t) => t && t.width > 0), `thumbnails: ${JSON.stringify(thumbs)}`);
  const lastTop = expected[expected.length - 1].top[0].product_id;
  assert.equal(thumbs[0].src, `e2e/.fixture/bundle/${bundleJson.thumbnails.products[lastTop]}`);
  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a category filter narrows the results to that category', async () => {
  const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')).queries[0];
  const { page } = await openDemo('e2e/.fixture/bundle');
  // The bundle's sample buttons (bundle.json "samples") instead of the file picker.
  await page.click(`#samples button:text("${expected.sample.split('/').pop()}")`);
  await page.waitForSelector('#results[data-state="done"]');
  assert.equal(await page.getAttribute('#results tbody tr:first-child', 'data-product-id'), expected.product_id);
  await page.selectOption('#category', 'shoes');
  await page.waitForFunction(() => [...document.querySelectorAll('#results tbody tr td:nth-child(4)')].every((td) => td.textContent === 'shoes'));
  const cats = await page.$$eval('#results tbody tr td:nth-child(4)', (tds) => tds.map((td) => td.textContent));
  assert.ok(cats.length > 0 && cats.every((c) => c === 'shoes'), `categories: ${cats}`);
  await page.close();
});

test('a model/index embedding-space mismatch is refused with a clear message', async () => {
  const { page } = await openDemo('e2e/.fixture/mismatch');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'error');
  assert.match(await page.textContent('#status'), /built in embedding space '.+' but the querying model produces 'f{64}'/);
  await page.close();
});
