package com.deepproduct.core;

import java.io.IOException;

/**
 * A gallery index that cannot be used; the message names the source (when known) and the problem,
 * worded as the Python SDK's {@code IndexFileError} so the same damage reads the same on every platform.
 */
public class IndexFileException extends IOException {
    private static final long serialVersionUID = 1L;
    private final String source;
    private final String problem;

    public IndexFileException(String source, String problem) {
        super(source != null ? source + ": " + problem : problem);
        this.source = source;
        this.problem = problem;
    }

    /** The file or asset name given to the reader, or null. */
    public String getSource() {
        return source;
    }

    /** The message without the source prefix (what the tests compare with the Python SDK's). */
    public String getProblem() {
        return problem;
    }

    // One subclass per error kind of the shared corpus (tests/vectors/bad/expected.json names them):
    // the same five-line shape each, on purpose -- Java has no cheaper way to give callers a type to
    // catch, and the duplicates tool's pair here is that shape, not copied logic.

    /** The file is shorter than its header says (an interrupted copy or download). */
    public static class Truncated extends IndexFileException {
        private static final long serialVersionUID = 1L;

        public Truncated(String source, String problem) {
            super(source, problem);
        }
    }

    /** A CRC-32 does not match: the bytes were damaged after writing. */
    public static class Checksum extends IndexFileException {
        private static final long serialVersionUID = 1L;

        public Checksum(String source, String problem) {
            super(source, problem);
        }
    }

    /** Written by a newer DeepProduct than this reader understands. */
    public static class UnsupportedVersion extends IndexFileException {
        private static final long serialVersionUID = 1L;

        public UnsupportedVersion(String source, String problem) {
            super(source, problem);
        }
    }

    /** The index was built by a different model than the one querying it. */
    public static class EmbeddingSpaceMismatch extends IndexFileException {
        private static final long serialVersionUID = 1L;

        public EmbeddingSpaceMismatch(String source, String problem) {
            super(source, problem);
        }
    }

    /** A query vector whose length is not the index's embedding dimension (a model/index mix-up). */
    public static class QueryDimension extends IndexFileException {
        private static final long serialVersionUID = 1L;

        public QueryDimension(String source, String problem) {
            super(source, problem);
        }
    }
}
