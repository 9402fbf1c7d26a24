// Search benchmark harness, run by `dp-bench search --cores`: the JS core (the code the web demo
// runs) in node, one thread, one query at a time, on an index file the SDK wrote. Prints one
// JSON line per mode (items, products): median/p90/min ms per query and query 0's top-k positions.
//
//   node web_demo/bench/search_bench.mjs INDEX.dpindex QUERIES.f32 K RUNS WARMUP
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { readIndex } from '../core/index.mjs';

const [indexPath, queriesPath, kArg, runsArg, warmupArg] = process.argv.slice(2);
if (!warmupArg) {
  console.error('usage: search_bench.mjs INDEX.dpindex QUERIES.f32 K RUNS WARMUP');
  process.exit(2);
}
const k = Number(kArg);
const runs = Number(runsArg);
const warmup = Number(warmupArg);
const index = readIndex(new Uint8Array(readFileSync(indexPath)), { source: basename(indexPath), verify: false });
const raw = readFileSync(queriesPath);
const flat = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
const queries = [];
for (let i = 0; i + index.dim <= flat.length; i += index.dim) queries.push(flat.subarray(i, i + index.dim));

for (const mode of ['items', 'products']) {
  const run = (q) => (mode === 'products' ? index.searchProducts(q, k) : index.search(q, k));
  // Let the JIT optimise the scan first: WARMUP calls and at least one second, as the JVM harness.
  const warmStart = process.hrtime.bigint();
  for (let i = 0; i < warmup || process.hrtime.bigint() - warmStart < 1_000_000_000n; i++) run(queries[i % queries.length]);
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    run(queries[i % queries.length]);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  console.log(JSON.stringify({
    file: basename(indexPath), storage: index.storage, count: index.size, k, mode, runs,
    median_ms: ms[Math.floor(runs / 2)], p90_ms: ms[Math.min(runs - 1, Math.floor(runs * 0.9))], min_ms: ms[0],
    positions: run(queries[0]).map((h) => h.position),
  }));
}
