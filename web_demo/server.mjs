// A tiny static file server for the demo page (node's http only, no dependencies).
// `node server.mjs [port]` serves web_demo/ on http://127.0.0.1:PORT/ ; the end-to-end test
// imports startServer() and lets the OS pick a free port. Loopback only, GET/HEAD only.
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
};

export function startServer({ root = fileURLToPath(new URL('.', import.meta.url)), port = 0, host = '127.0.0.1', log = false } = {}) {
  const base = resolve(root);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    // A malformed request target (a bad %-escape such as /%E0%A4%A, or a URL that does not
    // parse) is the client's error: 400, never an uncaught exception that ends the server.
    let urlPath;
    try {
      urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad request path');
      return;
    }
    let file = normalize(join(base, urlPath));
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end('outside the served folder');
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const size = statSync(file).size;
      res.writeHead(200, {
        'Content-Type': TYPES[extname(file).toLowerCase()] || 'application/octet-stream',
        'Content-Length': size,
        'Cache-Control': 'no-store',
      });
      if (req.method === 'HEAD') res.end();
      // A read error after the headers (file removed, EISDIR race) ends this response only.
      else createReadStream(file).on('error', () => res.destroy()).pipe(res);
      if (log) console.log(`200 ${urlPath}`);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${urlPath}`);
      if (log) console.log(`404 ${urlPath}`);
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      ok({ url: `http://${host}:${actual}/`, close: () => new Promise((done) => server.close(done)), server });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] || 8080);
  const { url } = await startServer({ port, log: true });
  console.log(`DeepProduct web demo on ${url} (Ctrl-C to stop)`);
}
