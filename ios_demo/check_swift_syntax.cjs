// Parses every .swift file under the given folders with tree-sitter-swift and fails on any ERROR
// or MISSING node. Linux has no Swift toolchain, so this is the most CI can check of the iOS code;
// `swift test` on macOS (README.md) is the real gate.
'use strict';
const fs = require('fs');
const path = require('path');
const Parser = require('tree-sitter');
const Swift = require('tree-sitter-swift');

function swiftFiles(dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === '.build' || entry.name.startsWith('.')) continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) swiftFiles(p, out);
    else if (entry.name.endsWith('.swift')) out.push(p);
  }
  return out;
}

function problems(node, out) {
  if (node.type === 'ERROR' || node.isMissing) {
    const kind = node.isMissing ? `MISSING ${node.type}` : 'ERROR';
    out.push(`${node.startPosition.row + 1}:${node.startPosition.column + 1} ${kind}: ${JSON.stringify(node.text.slice(0, 60))}`);
  }
  if (node.hasError || node.type === 'ERROR') {
    for (const child of node.children) problems(child, out);
  }
  return out;
}

const parser = new Parser();
parser.setLanguage(Swift);
const roots = process.argv.slice(2);
const files = roots.flatMap((r) => swiftFiles(r, []));
if (files.length === 0) {
  console.error(`no .swift files under ${roots.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  const src = fs.readFileSync(file, 'utf8');
  // Default buffer is 32 KiB; large files need a larger one or parse() throws.
  const tree = parser.parse(src, null, { bufferSize: Math.max(65536, src.length * 2) });
  const found = problems(tree.rootNode, []);
  if (found.length) {
    failed++;
    for (const f of found) console.error(`${file}:${f}`);
  }
}
console.log(`swift-syntax: ${files.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
