// web_demo/server.mjs answers a malformed request target with 400 and keeps serving (issue 19:
// one request for /%E0%A4%A used to end the process with an uncaught URIError).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startServer } from '../server.mjs';

/** One GET with a raw request target; resolves to { status, body }. */
function get(url, target) {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ hostname, port, path: target, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => ok({ status: res.statusCode, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

test('bad %-escapes and unparsable targets get 400; the server keeps serving', async () => {
  const root = mkdtempSync(join(tmpdir(), 'dp-server-'));
  writeFileSync(join(root, 'hello.txt'), 'hi');
  const server = await startServer({ root });
  try {
    for (const target of ['/%E0%A4%A', '/%', '/%ZZ', '/a%E0%A4', '//']) {
      const { status } = await get(server.url, target);
      assert.equal(status, 400, target);
    }
    assert.deepEqual(await get(server.url, '/hello.txt'), { status: 200, body: 'hi' });
    assert.equal((await get(server.url, '/%68ello.txt')).status, 200);
    assert.equal((await get(server.url, '/missing')).status, 404);
    assert.equal((await get(server.url, '/..%2f..%2fetc/passwd')).status, 403);
  } finally {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
});
