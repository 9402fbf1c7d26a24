package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import org.junit.Test;

/**
 * Model/index mix-ups and tiny inputs: each must fail with the Python SDK's exception class
 * (IndexFileError and subclasses) and its exact message (checked against deepproduct.sdk).
 */
public class BadInputTest {

    // The bad/ files and their expected errors: HostileVectorsTest, from tests/vectors/bad/expected.json.

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
