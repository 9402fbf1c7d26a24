// CRC-32/ISO-HDLC (zlib, PNG; reflected polynomial 0xEDB88320), as docs/index-format.md gives it.
// WebCrypto has no CRC and is async, so it is table-driven here.
const TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 of `bytes` (Uint8Array), continuing from `crc` (0 to start). */
export function crc32(bytes, crc = 0) {
  crc = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}
