package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The core's own JSON reader (manifest, index metadata) and the filter's JSON equality. */
public class JsonTest {

    @Test
    public void parsesTheJsonTypes() {
        Map<String, Object> m = Json.parseObject(
                "{\"s\": \"caf\\u00e9 \\\"q\\\"\", \"i\": 12, \"f\": 12.0, \"e\": -1.5e-3, \"t\": true, \"n\": null,"
                        + " \"a\": [1, [2], {}], \"o\": {\"k\": \"v\"}}");
        assertEquals("café \"q\"", m.get("s"));
        assertEquals(12L, m.get("i"));
        assertEquals(12.0, m.get("f"));
        assertEquals(-1.5e-3, (Double) m.get("e"), 0.0);
        assertEquals(Boolean.TRUE, m.get("t"));
        assertTrue(m.containsKey("n") && m.get("n") == null);
        assertEquals(3, ((List<?>) m.get("a")).size());
        assertEquals("v", ((Map<?, ?>) m.get("o")).get("k"));
    }

    @Test
    public void rejectsMalformedJsonWithAnOffset() {
        // Malformed text, and the strict grammar's refusals (docs/json.md): raw lone surrogates, signed
        // \\u escapes, a BOM, leading zeros, "1.", a non-finite number, duplicate keys.
        for (String bad : Arrays.asList("{", "{\"a\" 1}", "[1,]", "{\"a\": tru}", "\"x", "{} x", "NaN",
                "[\"\uD800\"]", "[\"\uDC00\"]", "[\"\uD800x\"]", "[\"\\u+123\"]", "[\"\\u-123\"]",
                "\uFEFF{}", "[01]", "[1.]", "1e400", "{\"a\":1,\"a\":1}")) {
            try {
                Json.parse(bad);
                fail("accepted " + bad);
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("invalid JSON at offset "));
            }
        }
    }

    @Test
    public void filterEqualityIsJsonEquality() {
        assertTrue(Json.equal(12L, 12.0));
        assertFalse(Json.equal(Boolean.TRUE, 1L));
        assertFalse(Json.equal(null, 0L));
        assertTrue(Json.equal(null, null));
        assertFalse(Json.equal(9007199254740993L, 9007199254740992L));  // integers exactly, not as doubles
        assertFalse(Json.equal(Json.parse("{\"a\": 1}"), Json.parse("{\"b\": 1}")));
        assertTrue(Json.equal(Json.parse("[1, {\"a\": \"b\"}]"), Json.parse("[1.0, {\"a\": \"b\"}]")));
        Map<String, Object> item = Json.parseObject("{\"category\": \"mug\", \"price\": 12.0, \"tag\": null}");
        assertTrue(MetadataFilter.matches(item, Json.parseObject("{\"price\": 12, \"category\": [\"hat\", \"mug\"]}")));
        assertTrue(MetadataFilter.matches(item, Json.parseObject("{\"tag\": null}")));
        assertFalse(MetadataFilter.matches(item, Json.parseObject("{\"colour\": null}")));
    }
}
