package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32;
import org.junit.Test;

/**
 * The shared JSON grammar corpus (tests/vectors/json/, docs/json.md): the same accept/refuse
 * verdict as the Python SDK, the JS and the Swift cores for every file. Also two places where the
 * cores once differed (issue 19): a huge k is clamped to the item count instead of sizing TopK by
 * it, and a leading U+FEFF in an id or the space id is kept.
 */
public class JsonVectorsTest {

    @SuppressWarnings("unchecked")
    private static Map<String, Object> expected() throws Exception {
        return Vectors.json("json/expected.json");
    }

    @Test
    @SuppressWarnings("unchecked")
    public void everyCorpusFileGetsItsVerdict() throws Exception {
        Map<String, Object> expected = expected();
        assertEquals(1L, expected.get("grammar_version"));
        assertEquals(Json.GRAMMAR_VERSION, ((Long) expected.get("grammar_version")).intValue());
        assertEquals((long) Json.MAX_DEPTH, expected.get("max_depth"));
        Map<String, Object> cases = (Map<String, Object>) expected.get("cases");
        Set<String> present = new HashSet<String>(Arrays.asList(Vectors.file("json").list()));
        present.remove("expected.json");
        assertEquals(new HashSet<String>(cases.keySet()), present);
        List<String> wrong = new ArrayList<String>();
        for (Map.Entry<String, Object> e : cases.entrySet()) {
            String verdict = (String) ((Map<String, Object>) e.getValue()).get("verdict");
            byte[] data = Vectors.bytes("json" + File.separator + e.getKey());
            String got;
            try {
                Json.parse(data);
                got = "accept";
            } catch (IllegalArgumentException x) {
                got = "refuse";
                assertFalse(x.getMessage(), x.getMessage().contains("\n"));
            } catch (StackOverflowError x) {
                got = "stack overflow";
            }
            if (!got.equals(verdict)) {
                wrong.add(e.getKey() + ": expected " + verdict + ", got " + got);
            }
        }
        assertEquals("verdicts differing from tests/vectors/json/expected.json", Collections.emptyList(), wrong);
        assertTrue(cases.size() >= 60);
    }

    @Test
    public void values() {
        assertEquals(Arrays.<Object>asList(0.0, -0.0, 0L), Json.parse("[1e-400, -0.0, -0]"));
        assertEquals("\uD83D\uDE00", Json.parse("\"\\ud83d\\ude00\""));
        assertEquals("\uD83D\uDE00", Json.parse("\"\uD83D\uDE00\""));
        assertEquals("\uFEFF", Json.parse(new byte[] {'"', (byte) 0xEF, (byte) 0xBB, (byte) 0xBF, '"'}));
        assertEquals(18446744073709551616.0, Json.parse("18446744073709551616"));
    }

    @Test
    public void hugeKIsClampedToTheItemCount() throws Exception {
        GalleryIndex index = Vectors.index("index/float32.dpindex");
        float[] q = index.vector(3);
        for (boolean coarse : new boolean[] {true, false}) {
            index.useCoarseScan = coarse;
            List<SearchResult> all = index.search(q, index.size());
            assertEquals(index.size(), all.size());
            // Was new int[100000000] + new double[100000000] in TopK: an OutOfMemoryError on small heaps.
            for (int k : new int[] {100000000, Integer.MAX_VALUE}) {
                List<SearchResult> hits = index.search(q, k);
                assertEquals(all.size(), hits.size());
                for (int i = 0; i < hits.size(); i++) {
                    assertEquals(all.get(i).position, hits.get(i).position);
                }
                Set<String> products = new HashSet<String>();
                for (int i = 0; i < index.size(); i++) {
                    products.add(index.productId(i));
                }
                assertEquals(products.size(), index.searchProducts(q, k, null).size());
            }
        }
        GalleryIndex empty = Vectors.index("index/empty.dpindex");
        float[] ones = new float[empty.dim()];
        Arrays.fill(ones, 1f);
        assertEquals(0, empty.search(ones, Integer.MAX_VALUE).size());
        assertEquals(0, empty.searchProducts(ones, Integer.MAX_VALUE, null).size());
    }

    @Test
    public void aLeadingBomIsKeptInIdsAndTheSpaceId() throws Exception {
        byte[] b = Vectors.bytes("index/float32.dpindex");
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int spaceAt = (int) h.getLong(40);  // section table: (offset, length) pairs from byte 40
        int idsAt = (int) h.getLong(40 + 16 * 3);
        byte[] bom = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};
        System.arraycopy(bom, 0, b, spaceAt, 3);
        System.arraycopy(bom, 0, b, idsAt, 3);
        int body = (int) h.getLong(32) - 8;  // file_size at byte 32; the trailer's CRC covers the rest
        CRC32 crc = new CRC32();
        crc.update(b, 0, body);
        h.putInt(body, (int) crc.getValue());
        GalleryIndex original = Vectors.index("index/float32.dpindex");
        GalleryIndex index = GalleryIndex.read(ByteBuffer.wrap(b), "bom.dpindex", true);
        assertEquals("\uFEFF" + original.productId(0).substring(3), index.productId(0));
        assertEquals("\uFEFF" + original.embeddingSpaceId.substring(3), index.embeddingSpaceId);
    }
}
