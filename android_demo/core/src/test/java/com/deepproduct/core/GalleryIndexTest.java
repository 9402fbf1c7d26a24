package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** Reader details the search vectors do not show directly: ids, metadata, int8 values, inputs. */
public class GalleryIndexTest {

    @Test
    public void idsAndMetadataDecodeAsWritten() throws Exception {
        GalleryIndex index = Vectors.index("index/float32.dpindex");
        assertEquals("p000", index.productId(0));
        assertEquals("p000", index.productId(1));
        assertEquals("p-café-23", index.productId(23));
        assertFalse("item 11 has no category", index.item(11).containsKey("category"));
        assertTrue(index.item(5).get("tags") instanceof List);
        assertTrue(index.item(0).get("in_stock") instanceof Boolean);
        assertTrue(index.item(0).containsKey("title"));
        assertFalse(index.info().isEmpty());
    }

    @Test
    public void int8VectorsDequantiseToTheFloat32OnesWithinHalfAStep() throws Exception {
        GalleryIndex f = Vectors.index("index/float32.dpindex");
        GalleryIndex q = Vectors.index("index/int8.dpindex");
        for (int i = 0; i < f.size(); i++) {
            float[] a = f.vector(i);
            float[] b = q.vector(i);
            for (int d = 0; d < f.dim(); d++) {
                assertEquals("item " + i + " dim " + d, a[d], b[d], q.scales[d] * 0.5f + 1e-7f);
            }
        }
    }

    @Test
    public void inputStreamAndDirectBufferReadTheSameIndex() throws Exception {
        byte[] raw = Vectors.bytes("index/int8.dpindex");
        GalleryIndex a = GalleryIndex.read(new ByteArrayInputStream(raw), "stream");
        ByteBuffer direct = ByteBuffer.allocateDirect(raw.length + 3);
        direct.put(new byte[3]).put(raw).flip();
        direct.position(3); // an index that does not start at offset 0 of its buffer (an APK asset)
        GalleryIndex b = GalleryIndex.read(direct, "direct", true);
        float[] query = a.vector(7);
        assertEquals(a.search(query, 40).toString(), b.search(query, 40).toString());
        assertTrue(Arrays.equals(a.vector(39), b.vector(39)));
    }

    @Test
    public void emptyIndexSearchesToNothing() throws Exception {
        GalleryIndex empty = Vectors.index("index/empty.dpindex");
        assertEquals(0, empty.size());
        assertEquals(16, empty.dim());
        float[] q = new float[16];
        q[3] = 1f;
        assertTrue(empty.search(q, 5).isEmpty());
    }

    @Test
    public void tiesGoToTheSmallerPositionAndQueriesNeedNotBeUnitLength() throws Exception {
        GalleryIndex index = Vectors.index("index/float32.dpindex");
        float[] q = index.vector(23); // identical to item 7's vector
        for (int d = 0; d < q.length; d++) {
            q[d] *= 3f;
        }
        List<SearchResult> top = index.search(q, 2);
        assertEquals(7, top.get(0).position);
        assertEquals(23, top.get(1).position);
        assertEquals(top.get(0).score, top.get(1).score, 0.0);
        assertEquals(1.0, top.get(0).score, 1e-6);
    }

    @Test
    public void filterValueListsMeanAnyOfAndMissingFieldsNeverMatch() throws Exception {
        GalleryIndex index = Vectors.index("index/float32.dpindex");
        Map<String, Object> filter = Json.parseObject("{\"category\": [\"mug\", \"hat\"]}");
        for (SearchResult r : index.search(index.vector(0), 40, filter)) {
            Object c = r.item.get("category");
            assertTrue(r.position + ": " + c, "mug".equals(c) || "hat".equals(c));
            assertTrue(r.position != 11);
        }
    }

    @Test
    public void checksumCanBeSkippedForHugeFilesButThenDamageGoesUnseen() throws Exception {
        GalleryIndex index = GalleryIndex.read(ByteBuffer.wrap(Vectors.bytes("bad/bad_checksum.dpindex")), "x", false);
        assertEquals(40, index.size());
    }
}
