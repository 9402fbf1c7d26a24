package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * tests/vectors/bad/expected.json: the one list of hostile files and expected errors that the Python
 * SDK and the Java, Swift and JS cores all check (see tests/vectors/make_bad_vectors.py).
 */
public class HostileVectorsTest {
    private static final Map<String, Class<?>> KINDS = new HashMap<String, Class<?>>();

    static {
        KINDS.put("IndexFileError", IndexFileException.class);
        KINDS.put("TruncatedIndexError", IndexFileException.Truncated.class);
        KINDS.put("ChecksumError", IndexFileException.Checksum.class);
        KINDS.put("UnsupportedVersionError", IndexFileException.UnsupportedVersion.class);
        KINDS.put("ManifestError", ModelManifest.ManifestException.class);
    }

    static String schema() throws Exception {
        return new String(Vectors.bytes("../../export/manifest.schema.json"), "UTF-8");
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Map<String, Object>> cases(String kind) throws Exception {
        return (Map<String, Map<String, Object>>) Vectors.json("bad/expected.json").get(kind);
    }

    private static List<Integer> top5(GalleryIndex index, float[] q) throws Exception {
        List<Integer> out = new ArrayList<Integer>();
        for (SearchResult h : index.search(q, 5)) {
            out.add(h.position);
        }
        return out;
    }

    @Test
    public void hostileIndexes() throws Exception {
        int checked = 0;
        for (Map.Entry<String, Map<String, Object>> e : cases("index").entrySet()) {
            String source = "bad/" + e.getKey();
            Map<String, Object> want = e.getValue();
            if (Boolean.TRUE.equals(want.get("valid"))) {
                GalleryIndex index = Vectors.index(source);
                GalleryIndex ref = Vectors.index((String) want.get("same_results_as"));
                assertEquals(((Long) want.get("count")).intValue(), index.size());
                for (int i = 0; i < 3; i++) {
                    assertEquals(source, top5(ref, ref.vector(i)), top5(index, ref.vector(i)));
                }
                checked++;
                continue;
            }
            try {
                Vectors.index(source);
                fail(source + " was accepted");
            } catch (IndexFileException x) {
                assertEquals(source + ": " + x.getMessage(), KINDS.get(want.get("kind")), x.getClass());
                assertTrue(source + ": " + x.getProblem(), x.getProblem().startsWith((String) want.get("problem")));
                assertEquals(source + ": " + x.getProblem(), x.getMessage());
                checked++;
            }
        }
        assertTrue(checked >= 14);
    }

    @Test
    public void hostileManifests() throws Exception {
        String schema = schema();
        int checked = 0;
        for (Map.Entry<String, Map<String, Object>> e : cases("manifest").entrySet()) {
            String source = "bad/" + e.getKey();
            byte[] text = Vectors.bytes(source);  // bytes: decoded strictly by the core
            Map<String, Object> want = e.getValue();
            if (Boolean.TRUE.equals(want.get("valid"))) {
                assertEquals(16, ModelManifest.parse(text, source, schema).embeddingDim);
                checked++;
                continue;
            }
            try {
                ModelManifest.parse(text, source, schema);
                fail(source + " was accepted");
            } catch (IllegalArgumentException x) {
                assertEquals(source + ": " + x.getMessage(), ModelManifest.ManifestException.class, x.getClass());
                assertTrue(x.getMessage(), x.getMessage().startsWith(source + ": ")
                        && x.getMessage().contains((String) want.get("mentions")));
                checked++;
            }
        }
        assertTrue(checked >= 15);
    }
}
