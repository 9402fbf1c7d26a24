// A minimal PNG decoder for the tests (node has zlib but no image codec): 8-bit grey, grey+alpha,
// RGB, RGBA, and 1/2/4/8-bit palette (with tRNS), non-interlaced -- what tests/vectors/images/
// uses for its 8-bit PNGs. Returns straight (non-premultiplied) RGBA bytes, like canvas ImageData.
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export function decodePng(path) {
  const buf = readFileSync(path);
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!sig.every((b, i) => buf[i] === b)) throw new Error(`${path}: not a PNG`);
  let pos = 8;
  let width = 0, height = 0, depth = 0, colour = 0, interlace = 0;
  let palette = null, trns = null;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      depth = data[8]; colour = data[9]; interlace = data[12];
    } else if (type === 'PLTE') palette = data;
    else if (type === 'tRNS') trns = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const packed = colour === 3 && depth < 8;
  if ((depth !== 8 && !packed) || interlace !== 0) throw new Error(`${path}: unsupported PNG (depth ${depth}, interlace ${interlace})`);
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colour];
  const raw = inflateSync(Buffer.concat(idat));
  const stride = Math.ceil((width * channels * depth) / 8); // bytes per row
  const bpp = Math.max(1, (channels * depth) / 8); // filter's byte distance to the left pixel
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const pixels = rows;
      const a = x >= bpp ? pixels[y * stride + x - bpp] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? pixels[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      rows[y * stride + x] = v & 0xff;
    }
  }
  // Unpack 1/2/4-bit palette indices to one byte per pixel (most significant bits first).
  let pixels = rows;
  if (packed) {
    pixels = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        pixels[y * width + x] = (rows[y * stride + (bit >> 3)] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
      }
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    let r, g, b, a = 255;
    if (colour === 0) {
      r = g = b = pixels[i];
      if (trns && trns.readUInt16BE(0) === r) a = 0;
    } else if (colour === 4) { r = g = b = pixels[i * 2]; a = pixels[i * 2 + 1]; }
    else if (colour === 2) {
      [r, g, b] = pixels.subarray(i * 3, i * 3 + 3);
      if (trns && trns.readUInt16BE(0) === r && trns.readUInt16BE(2) === g && trns.readUInt16BE(4) === b) a = 0;
    } else if (colour === 6) [r, g, b, a] = pixels.subarray(i * 4, i * 4 + 4);
    else {
      const p = pixels[i];
      [r, g, b] = palette.subarray(p * 3, p * 3 + 3);
      if (trns && p < trns.length) a = trns[p];
    }
    rgba.set([r, g, b, a], i * 4);
  }
  return { width, height, data: rgba };
}
