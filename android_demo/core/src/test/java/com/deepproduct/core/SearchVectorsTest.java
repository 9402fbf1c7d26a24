package com.deepproduct.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * tests/vectors/index/expected.json: for the float32 and the int8 index, every case (top-5, full
 * ranking, category filters, number/bool filters, a filter matching nothing) and every query gives
 * the Python SDK's positions and product ids, and scores within score_atol.
 */
public class SearchVectorsTest {

    @SuppressWarnings("unchecked")
    private static void checkIndex(String name) throws Exception {
        Map<String, Object> expected = Vectors.json("index/expected.json");
        Map<String, Object> spec = (Map<String, Object>) ((Map<String, Object>) expected.get("indexes")).get(name);
        double atol = ((Number) expected.get("score_atol")).doubleValue();
        List<Object> queries = (List<Object>) expected.get("queries");
        GalleryIndex index = Vectors.index("index/" + spec.get("file"));

        assertEquals(((Number) expected.get("dim")).intValue(), index.dim());
        assertEquals(((Number) expected.get("count")).intValue(), index.size());
        assertEquals(expected.get("embedding_space_id"), index.embeddingSpaceId);
        assertEquals(spec.get("storage"), index.storage());

        // The scoring query: qn (and w = qn * scale for int8) must be the SDK's float32 values exactly.
        List<Object> weights = (List<Object>) (name.equals("int8") ? spec.get("int8_weights") : expected.get("normalized_queries"));
        for (int q = 0; q < queries.size(); q++) {
            assertArrayEquals("scoring weights of query " + q, Vectors.floats(weights.get(q)),
                    index.scoringQuery(Vectors.floats(queries.get(q))), 0f);
        }
        // The queries file holds the same float32 values as the inline JSON.
        float[] file = Vectors.f32("index/" + expected.get("queries_file"));
        assertArrayEquals(Vectors.floats(queries.get(1)), java.util.Arrays.copyOfRange(file, index.dim(), 2 * index.dim()), 0f);

        int checked = checkCases(index, (List<Object>) spec.get("cases"), queries, atol, name, false);
        assertTrue("no expected results were compared", checked > 100);
        // Product-level search: top-k distinct products, each by its best image.
        int products = checkCases(index, (List<Object>) spec.get("product_cases"), queries, atol, name, true);
        assertTrue("no expected product results were compared", products > 100);
    }

    /** Every case and query: positions, product ids and scores (within atol); returns the results compared. */
    @SuppressWarnings("unchecked")
    private static int checkCases(GalleryIndex index, List<Object> cases, List<Object> queries, double atol,
            String name, boolean products) throws Exception {
        int checked = 0;
        for (Object c : cases) {
            Map<String, Object> cs = (Map<String, Object>) c;
            int k = ((Number) cs.get("k")).intValue();
            Map<String, Object> filter = (Map<String, Object>) cs.get("filter");
            List<Object> results = (List<Object>) cs.get("results");
            for (int q = 0; q < queries.size(); q++) {
                Map<String, Object> want = (Map<String, Object>) results.get(q);
                float[] query = Vectors.floats(queries.get(q));
                List<SearchResult> got = products ? index.searchProducts(query, k, filter) : index.search(query, k, filter);
                String what = name + (products ? " products" : "") + " k=" + k + " filter=" + filter + " query " + q;
                int[] positions = Vectors.ints(want.get("positions"));
                double[] scores = Vectors.doubles(want.get("scores"));
                List<Object> ids = (List<Object>) want.get("product_ids");
                assertEquals(what + ": result count", positions.length, got.size());
                for (int r = 0; r < positions.length; r++) {
                    assertEquals(what + ": position at rank " + (r + 1), positions[r], got.get(r).position);
                    assertEquals(what + ": product id at rank " + (r + 1), ids.get(r), got.get(r).productId);
                    assertEquals(what + ": score at rank " + (r + 1), scores[r], got.get(r).score, atol);
                    checked++;
                }
            }
        }
        return checked;
    }

    @Test
    public void float32IndexReproducesTheSdk() throws Exception {
        checkIndex("float32");
    }

    @Test
    public void int8IndexReproducesTheSdk() throws Exception {
        checkIndex("int8");
    }

    @SuppressWarnings("unchecked")
    @Test
    public void int8ScalesAreReadAsStored() throws Exception {
        Map<String, Object> expected = Vectors.json("index/expected.json");
        Map<String, Object> spec = (Map<String, Object>) ((Map<String, Object>) expected.get("indexes")).get("int8");
        assertArrayEquals(Vectors.floats(spec.get("scales")), Vectors.index("index/int8.dpindex").scales, 0f);
    }
}
