package com.deepproduct.core;

import java.util.List;
import java.util.Map;

/**
 * The index's metadata filter (docs/index-format.md, "Search semantics"): an item is eligible when,
 * for every field, its value JSON-equals the filter's value, or any element of it when the filter's
 * value is a list. Items lacking the field are not eligible.
 */
public final class MetadataFilter {
    private MetadataFilter() {
    }

    public static boolean matches(Map<String, Object> item, Map<String, Object> filter) {
        for (Map.Entry<String, Object> e : filter.entrySet()) {
            if (!item.containsKey(e.getKey())) {
                return false;
            }
            Object have = item.get(e.getKey());
            Object want = e.getValue();
            boolean ok = false;
            if (want instanceof List) {
                for (Object w : (List<?>) want) {
                    if (Json.equal(have, w)) {
                        ok = true;
                        break;
                    }
                }
            } else {
                ok = Json.equal(have, want);
            }
            if (!ok) {
                return false;
            }
        }
        return true;
    }
}
