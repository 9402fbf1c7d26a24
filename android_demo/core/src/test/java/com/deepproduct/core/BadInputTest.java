package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import org.junit.Test;

/**
 * tests/vectors/bad/ and model/index mix-ups: each must fail with the Python SDK's exception class
 * (IndexFileError and subclasses) and its exact message (checked against deepproduct.sdk).
 */
public class BadInputTest {

    private static IndexFileException readBad(String file) throws Exception {
        try {
            Vectors.index("bad/" + file);
        } catch (IndexFileException e) {
            assertEquals("bad/" + file + ": " + e.getProblem(), e.getMessage());
            return e;
        }
        fail(file + " was accepted");
        return null;
    }

    @Test
    public void truncatedIndex() throws Exception {
        IndexFileException e = readBad("truncated.dpindex");
        assertEquals(IndexFileException.Truncated.class, e.getClass());
        assertEquals("truncated: 3716 bytes on disk but the header says 7432 (an interrupted copy or download?)",
                e.getProblem());
    }

    @Test
    public void newerFormatVersion() throws Exception {
        IndexFileException e = readBad("version2.dpindex");
        assertEquals(IndexFileException.UnsupportedVersion.class, e.getClass());
        assertEquals("index format version 2 is newer than this reader supports (1); upgrade deepproduct or "
                + "rebuild the index with this version", e.getProblem());
    }

    @Test
    public void damagedVectorBlock() throws Exception {
        IndexFileException e = readBad("bad_checksum.dpindex");
        assertEquals(IndexFileException.Checksum.class, e.getClass());
        assertEquals("checksum mismatch (stored CRC-32 12dbcc24, computed 313f27ae): the file is damaged; "
                + "rebuild or re-copy it", e.getProblem());
    }

    @Test
    public void damagedHeader() throws Exception {
        IndexFileException e = readBad("bad_header_crc.dpindex");
        assertEquals(IndexFileException.Checksum.class, e.getClass());
        assertEquals("header CRC-32 mismatch: the header is damaged", e.getProblem());
    }

    @Test
    public void notAnIndex() throws Exception {
        IndexFileException e = readBad("not_an_index.dpindex");
        assertEquals(IndexFileException.class, e.getClass());
        assertEquals("not a DeepProduct gallery index (magic b'\\x89PNG\\r\\n\\x1a\\n', expected b'DPINDEX\\x00')",
                e.getProblem());
    }

    @Test
    public void tooShortToBeAnIndex() throws Exception {
        try {
            GalleryIndex.read(java.nio.ByteBuffer.wrap(new byte[5]), null, true);
            fail("accepted 5 bytes");
        } catch (IndexFileException.Truncated e) {
            assertEquals("only 5 bytes; too short to be a gallery index", e.getMessage());
        }
    }

    @Test
    public void embeddingSpaceMismatch() throws Exception {
        GalleryIndex index = Vectors.index("index/float32.dpindex");
        index.requireEmbeddingSpace("test-vectors-space-v1");
        index.requireEmbeddingSpace(""); // unknown model: the SDK skips the check
        try {
            index.requireEmbeddingSpace("other-space");
            fail("mismatch accepted");
        } catch (IndexFileException.EmbeddingSpaceMismatch e) {
            assertEquals("built in embedding space 'test-vectors-space-v1' but the querying model produces "
                    + "'other-space'; rebuild the index with this model (dp-search build)", e.getProblem());
        }
    }

    @Test
    public void wrongQueryDimension() throws Exception {
        GalleryIndex index = Vectors.index("index/float32.dpindex");
        try {
            index.search(new float[15], 5);
            fail("15-d query accepted");
        } catch (IndexFileException.QueryDimension e) {
            assertEquals("query has dimension 15 but the index holds 16-dimensional embeddings (wrong model?)",
                    e.getProblem());
        }
    }

    @Test
    public void zeroOrNonFiniteQueryAndBadK() throws Exception {
        GalleryIndex index = Vectors.index("index/float32.dpindex");
        float[] nan = new float[16];
        nan[2] = Float.NaN;
        String[][] cases = {{"zero", "query 0 is all zeros; cannot normalise"},
            {"nan", "querys contain NaN or infinity"}, {"k0", "k must be at least 1, got 0"}};
        for (String[] c : cases) {
            try {
                if (c[0].equals("zero")) {
                    index.search(new float[16], 5);
                } else if (c[0].equals("nan")) {
                    index.search(nan, 5);
                } else {
                    index.search(index.vector(0), 0);
                }
                fail(c[0] + " accepted");
            } catch (IllegalArgumentException e) {
                assertEquals(c[1], e.getMessage());
            }
        }
    }
}
