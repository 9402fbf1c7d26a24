// Error classes mirroring the Python SDK's (sdk_python/index_format.py, index.py): the same
// damage gives the same class name and the same words on every platform.

/** A gallery index that cannot be used; `.problem` is the message without the source prefix. */
export class IndexFileError extends Error {
  constructor(source, problem) {
    super(source ? `${source}: ${problem}` : problem);
    this.name = 'IndexFileError';
    this.source = source ?? null;
    this.problem = problem;
  }
}
/** The file is shorter than its header says (an interrupted copy or download). */
export class TruncatedIndexError extends IndexFileError {
  constructor(source, problem) { super(source, problem); this.name = 'TruncatedIndexError'; }
}
/** A CRC-32 does not match: the bytes were damaged after writing. */
export class ChecksumError extends IndexFileError {
  constructor(source, problem) { super(source, problem); this.name = 'ChecksumError'; }
}
/** Written by a newer DeepProduct than this reader understands. */
export class UnsupportedVersionError extends IndexFileError {
  constructor(source, problem) { super(source, problem); this.name = 'UnsupportedVersionError'; }
}
/** The index was built by a different model than the one querying it. */
export class EmbeddingSpaceMismatchError extends IndexFileError {
  constructor(source, problem) { super(source, problem); this.name = 'EmbeddingSpaceMismatchError'; }
}
/** A query vector whose length is not the index's embedding dimension (a model/index mix-up). */
export class QueryDimensionError extends IndexFileError {
  constructor(source, problem) { super(source, problem); this.name = 'QueryDimensionError'; }
}

/** Texts of sdk_python/gallery_index.py (check_embedding_space, prepare_queries, normalize_rows, search). */
export const messages = {
  spaceMismatch: (indexSpace, modelSpace) =>
    `built in embedding space '${indexSpace}' but the querying model produces '${modelSpace}'; rebuild the index with this model (dp-search build)`,
  queryDimension: (got, dim) => `query has dimension ${got} but the index holds ${dim}-dimensional embeddings (wrong model?)`,
  nonFiniteQuery: () => 'querys contain NaN or infinity',
  zeroQuery: () => 'query 0 is all zeros; cannot normalise',
  badK: (k) => `k must be at least 1, got ${k}`,
};

/** Python's repr() of a bytes object, so messages read exactly like the SDK's. */
export function pyBytesRepr(bytes) {
  let hasSingle = false;
  let hasDouble = false;
  for (const b of bytes) {
    hasSingle ||= b === 0x27;
    hasDouble ||= b === 0x22;
  }
  const quote = hasSingle && !hasDouble ? '"' : "'";
  let s = 'b' + quote;
  for (const c of bytes) {
    const ch = String.fromCharCode(c);
    if (ch === quote || ch === '\\') s += '\\' + ch;
    else if (c === 9) s += '\\t';
    else if (c === 10) s += '\\n';
    else if (c === 13) s += '\\r';
    else if (c < 0x20 || c >= 0x7f) s += '\\x' + c.toString(16).padStart(2, '0');
    else s += ch;
  }
  return s + quote;
}
