package com.deepproduct.core;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A small JSON Schema (draft 2020-12) checker for the keywords export/manifest.schema.json uses; a
 * port of sdk_python/json_schema.py with the same field paths, so every reader enforces the one
 * schema file (bundles ship it as {@code manifest.schema.json}). Values are {@link Json}'s: Map,
 * List, String, Long, Double, Boolean, null.
 */
public final class JsonSchema {
    private static final Set<String> KNOWN = new HashSet<String>(Arrays.asList(
            "$schema", "$id", "$defs", "title", "description", "format", "$comment", "default", "examples",
            "type", "enum", "const", "required", "properties", "additionalProperties", "items", "minItems",
            "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "pattern",
            "$ref", "allOf", "if", "then", "else"));

    private JsonSchema() {
    }

    /** The first place a value breaks the schema: {@code field} (e.g. artefacts[0].file) and the problem. */
    public static final class Violation extends RuntimeException {
        private static final long serialVersionUID = 1L;
        public final String field;
        public final String problem;

        Violation(String field, String problem) {
            super((field.isEmpty() ? "(top level)" : field) + ": " + problem);
            this.field = field.isEmpty() ? "(top level)" : field;
            this.problem = problem;
        }
    }

    public static void check(Object value, Map<String, Object> schema) {
        check(value, schema, schema, "");
    }

    private static boolean typeOk(Object v, String t) {
        if ("object".equals(t)) {
            return v instanceof Map;
        } else if ("array".equals(t)) {
            return v instanceof List;
        } else if ("string".equals(t)) {
            return v instanceof String;
        } else if ("boolean".equals(t)) {
            return v instanceof Boolean;
        } else if ("null".equals(t)) {
            return v == null;
        } else if ("integer".equals(t)) {
            return v instanceof Long || (v instanceof Double && (Double) v == Math.rint((Double) v));
        } else if ("number".equals(t)) {
            return v instanceof Long || v instanceof Double;
        }
        throw new IllegalArgumentException("unknown JSON Schema type '" + t + "'");
    }

    private static String show(Object v) {
        String t = v instanceof String ? "'" + v + "'" : String.valueOf(v);
        return t.length() <= 60 ? t : t.substring(0, 57) + "...";
    }

    private static String join(String path, Object key) {
        if (key instanceof Integer) {
            return path + "[" + key + "]";
        }
        return path.isEmpty() ? String.valueOf(key) : path + "." + key;
    }

    private static double num(Object v) {
        return ((Number) v).doubleValue();
    }

    @SuppressWarnings("unchecked")
    private static void check(Object value, Map<String, Object> schema, Map<String, Object> root, String path) {
        for (String k : schema.keySet()) {
            if (!KNOWN.contains(k)) {
                throw new IllegalArgumentException("schema keyword '" + k + "' not supported by this checker");
            }
        }
        if (schema.containsKey("$ref")) {
            String ref = (String) schema.get("$ref");
            if (!ref.startsWith("#/")) {
                throw new IllegalArgumentException("only local $ref is supported, got '" + ref + "'");
            }
            Object node = root;
            for (String part : ref.substring(2).split("/")) {
                node = ((Map<String, Object>) node).get(part);
            }
            check(value, (Map<String, Object>) node, root, path);
        }
        if (schema.containsKey("type")) {
            Object t = schema.get("type");
            List<Object> types = t instanceof List ? (List<Object>) t : Arrays.asList(t);
            boolean ok = false;
            StringBuilder names = new StringBuilder();
            for (Object name : types) {
                ok |= typeOk(value, (String) name);
                names.append(names.length() > 0 ? " or " : "").append(name);
            }
            if (!ok) {
                throw new Violation(path, show(value) + " is not of type " + names);
            }
        }
        if (schema.containsKey("const") && !Json.equal(value, schema.get("const"))) {
            throw new Violation(path, show(value) + " is not " + show(schema.get("const")));
        }
        if (schema.containsKey("enum")) {
            boolean ok = false;
            for (Object e : (List<Object>) schema.get("enum")) {
                ok |= Json.equal(value, e);
            }
            if (!ok) {
                throw new Violation(path, show(value) + " is not one of " + schema.get("enum"));
            }
        }
        if (value instanceof Long || value instanceof Double) {
            double v = num(value);
            String[] keys = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
            for (String key : keys) {
                if (!schema.containsKey(key)) {
                    continue;
                }
                double b = num(schema.get(key));
                boolean fails = "minimum".equals(key) ? v < b : "maximum".equals(key) ? v > b
                        : "exclusiveMinimum".equals(key) ? v <= b : v >= b;
                if (fails) {
                    throw new Violation(path, value + " breaks " + key + " " + schema.get(key));
                }
            }
        }
        if (value instanceof String) {
            String s = (String) value;
            if (schema.containsKey("minLength") && s.codePointCount(0, s.length()) < num(schema.get("minLength"))) {
                throw new Violation(path, show(s) + " is shorter than " + schema.get("minLength") + " characters");
            }
            if (schema.containsKey("pattern") && !Pattern.compile((String) schema.get("pattern")).matcher(s).find()) {
                throw new Violation(path, show(s) + " does not match '" + schema.get("pattern") + "'");
            }
        }
        if (value instanceof List) {
            List<Object> list = (List<Object>) value;
            if (schema.containsKey("minItems") && list.size() < num(schema.get("minItems"))) {
                throw new Violation(path, "has " + list.size() + " items, fewer than " + schema.get("minItems"));
            }
            if (schema.containsKey("maxItems") && list.size() > num(schema.get("maxItems"))) {
                throw new Violation(path, "has " + list.size() + " items, more than " + schema.get("maxItems"));
            }
            if (schema.containsKey("items")) {
                for (int i = 0; i < list.size(); i++) {
                    check(list.get(i), (Map<String, Object>) schema.get("items"), root, join(path, i));
                }
            }
        }
        if (value instanceof Map) {
            Map<String, Object> obj = (Map<String, Object>) value;
            if (schema.containsKey("required")) {
                for (Object key : (List<Object>) schema.get("required")) {
                    if (!obj.containsKey(key)) {
                        throw new Violation(join(path, key), "required field is missing");
                    }
                }
            }
            Map<String, Object> props = schema.containsKey("properties")
                    ? (Map<String, Object>) schema.get("properties") : java.util.Collections.<String, Object>emptyMap();
            Object extra = schema.get("additionalProperties");
            for (Map.Entry<String, Object> e : obj.entrySet()) {
                if (props.containsKey(e.getKey())) {
                    check(e.getValue(), (Map<String, Object>) props.get(e.getKey()), root, join(path, e.getKey()));
                } else if (Boolean.FALSE.equals(extra)) {
                    throw new Violation(join(path, e.getKey()), "unexpected field");
                } else if (extra instanceof Map) {
                    check(e.getValue(), (Map<String, Object>) extra, root, join(path, e.getKey()));
                }
            }
        }
        if (schema.containsKey("allOf")) {
            for (Object sub : (List<Object>) schema.get("allOf")) {
                check(value, (Map<String, Object>) sub, root, path);
            }
        }
        if (schema.containsKey("if")) {
            boolean matched = true;
            try {
                check(value, (Map<String, Object>) schema.get("if"), root, path);
            } catch (Violation v) {
                matched = false;
            }
            Object branch = schema.get(matched ? "then" : "else");
            if (branch != null) {
                check(value, (Map<String, Object>) branch, root, path);
            }
        }
    }
}
