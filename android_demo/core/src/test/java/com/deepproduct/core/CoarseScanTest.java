package com.deepproduct.core;

import static org.junit.Assert.assertEquals;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/**
 * The two-stage scan (CoarseScan) returns exactly what the plain float64 scan returns: same
 * positions and the same scores, on random, tied (items 7 and 23 are equal), extreme and
 * filtered queries, k from 1 to beyond the gallery.
 */
public class CoarseScanTest {

    private static void check(String file) throws Exception {
        GalleryIndex coarse = Vectors.index(file);
        GalleryIndex plain = Vectors.index(file);
        plain.useCoarseScan = false;
        Random rng = new Random(7);
        int dim = coarse.dim();
        int[] ks = {1, 3, 5, 40, 100};
        Map<String, Object> mug = Collections.<String, Object>singletonMap("category", "mug");
        int compared = 0;
        for (int t = 0; t < 400; t++) {
            float[] q = new float[dim];
            if (t % 5 == 0) {
                q = coarse.vector(t % coarse.size());  // an item itself: ties with its duplicate
            } else {
                double scale = Math.pow(10, rng.nextInt(61) - 30);  // NaN-free extremes
                for (int d = 0; d < dim; d++) {
                    q[d] = (float) (rng.nextGaussian() * scale);
                }
                if (t % 7 == 0) {
                    q[rng.nextInt(dim)] *= 1e6f;
                }
            }
            for (int k : ks) {
                Map<String, Object> filter = t % 3 == 0 ? mug : null;
                List<SearchResult> a = coarse.search(q, k, filter);
                List<SearchResult> b = plain.search(q, k, filter);
                assertEquals(file + " query " + t + " k=" + k, b.size(), a.size());
                for (int r = 0; r < a.size(); r++) {
                    assertEquals(file + " query " + t + " k=" + k + " rank " + r, b.get(r).position, a.get(r).position);
                    assertEquals(b.get(r).score, a.get(r).score, 0.0);
                    compared++;
                }
            }
        }
        assertEquals(true, compared > 10000);
    }

    @Test
    public void float32AndInt8MatchThePlainScan() throws Exception {
        for (String storage : new String[] {"float32", "int8"}) {
            check("index/" + storage + ".dpindex");  // the file name is in every failure message
        }
    }

    /**
     * The unfiltered stage 1 (int columns, blocks of 1024 rows) keeps exactly the candidates of
     * the byte loop that filtered scans use (an always-true filter), on galleries of several
     * blocks with exact ties across a block boundary, for float32 (the shadow) and int8 codes.
     */
    @Test
    public void columnScanKeepsTheByteLoopsCandidatesAcrossBlocks() {
        Random rng = new Random(11);
        int dim = 24;
        CoarseScan.Eligible all = new CoarseScan.Eligible() {
            @Override
            public boolean test(int row) {
                return true;
            }
        };
        for (int count : new int[] {1, 1023, 1024, 1025, 3000}) {
            float[] v = new float[count * dim];
            byte[] codes = new byte[count * dim];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) rng.nextGaussian();
                codes[i] = (byte) (rng.nextInt(255) - 127);
            }
            for (int i : new int[] {count / 2, count - 1}) {  // ties with row 0, across the blocks
                System.arraycopy(v, 0, v, i * dim, dim);
                System.arraycopy(codes, 0, codes, i * dim, dim);
            }
            CoarseScan[] scans = {CoarseScan.ofFloat32(FloatBuffer.wrap(v), count, dim),
                CoarseScan.ofInt8(ByteBuffer.wrap(codes), count, dim)};
            for (CoarseScan scan : scans) {
                for (int t = 0; t < 40; t++) {
                    float[] w = new float[dim];
                    for (int d = 0; d < dim; d++) {
                        w[d] = t == 0 ? v[d] : (float) (rng.nextGaussian() * Math.pow(10, rng.nextInt(21) - 10));
                    }
                    for (int k : new int[] {1, 5, 40, count + 3}) {
                        int[] fast = scan.candidates(w, k, null);
                        int[] bytes = scan.candidates(w, k, all);
                        assertEquals("count " + count + " query " + t + " k=" + k, Arrays.toString(bytes),
                                Arrays.toString(fast));
                    }
                }
            }
            long budget = CoarseScan.columnBudgetBytes;
            CoarseScan.columnBudgetBytes = 0;  // above the heap cap: the unfiltered byte loop
            try {
                CoarseScan[] fresh = {CoarseScan.ofFloat32(FloatBuffer.wrap(v), count, dim),
                    CoarseScan.ofInt8(ByteBuffer.wrap(codes), count, dim)};
                for (int s = 0; s < fresh.length; s++) {
                    float[] w = new float[dim];
                    for (int d = 0; d < dim; d++) {
                        w[d] = (float) rng.nextGaussian();
                    }
                    assertEquals(Arrays.toString(scans[s].candidates(w, 5, null)),
                            Arrays.toString(fresh[s].candidates(w, 5, null)));
                }
            } finally {
                CoarseScan.columnBudgetBytes = budget;
            }
        }
    }
}
