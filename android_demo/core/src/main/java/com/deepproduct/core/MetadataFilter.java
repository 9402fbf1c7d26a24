package com.deepproduct.core;

import java.util.Iterator;
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
                    if (jsonEquals(have, w)) {
                        ok = true;
                        break;
                    }
                }
            } else {
                ok = jsonEquals(have, want);
            }
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    /** JSON equality: numbers numerically, strings by code points, booleans and null as themselves. */
    public static boolean jsonEquals(Object a, Object b) {
        if (a == null || b == null) {
            return a == b;
        }
        if (a instanceof Number && b instanceof Number) {
            if (a instanceof Long && b instanceof Long) {
                return ((Long) a).longValue() == ((Long) b).longValue();
            }
            return ((Number) a).doubleValue() == ((Number) b).doubleValue();
        }
        if (a instanceof List && b instanceof List) {
            List<?> la = (List<?>) a;
            List<?> lb = (List<?>) b;
            if (la.size() != lb.size()) {
                return false;
            }
            for (int i = 0; i < la.size(); i++) {
                if (!jsonEquals(la.get(i), lb.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Map && b instanceof Map) {
            Map<?, ?> ma = (Map<?, ?>) a;
            Map<?, ?> mb = (Map<?, ?>) b;
            if (ma.size() != mb.size()) {
                return false;
            }
            Iterator<? extends Map.Entry<?, ?>> it = ma.entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<?, ?> e = it.next();
                if (!mb.containsKey(e.getKey()) || !jsonEquals(e.getValue(), mb.get(e.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        // String/Boolean: same class and equal; a boolean never equals a number.
        return a.getClass() == b.getClass() && a.equals(b);
    }
}
