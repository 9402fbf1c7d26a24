// Access to the shared tests/vectors/ (README there). DEEPPRODUCT_VECTORS overrides the folder.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VECTORS = process.env.DEEPPRODUCT_VECTORS
  || resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'vectors');

export const path = (rel) => join(VECTORS, rel);
export const bytes = (rel) => new Uint8Array(readFileSync(path(rel)));
export const json = (rel) => JSON.parse(readFileSync(path(rel), 'utf8'));

/** Raw little-endian float32 file (copied, so alignment does not matter). */
export function f32(rel) {
  const b = readFileSync(path(rel));
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i);
  return out;
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
