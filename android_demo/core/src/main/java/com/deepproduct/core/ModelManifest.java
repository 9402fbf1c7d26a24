package com.deepproduct.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The parts of the exporter's {@code manifest.json} a demo needs (docs/manifest.md): the input
 * contract, the embedding-space id checked against the index, and the artefact files. Mirrors
 * {@code sdk_python/model_manifest.py}, including its errors.
 */
public final class ModelManifest {
    public static final String FORMAT = "deepproduct-model-manifest";
    public static final int VERSION = 1;

    /** One exported model file and how to feed it. */
    public static final class Artefact {
        public final String file;
        public final String format;
        public final String precision;
        public final String layout;
        public final String inputName;
        public final String outputName;
        public final String sha256;

        Artefact(String file, String format, String precision, String layout, String inputName, String outputName,
                 String sha256) {
            this.file = file;
            this.format = format;
            this.precision = precision;
            this.layout = layout;
            this.inputName = inputName;
            this.outputName = outputName;
            this.sha256 = sha256;
        }
    }

    public final String source;
    public final String modelName;
    public final String modelVersion;
    public final String backbone;
    public final int embeddingDim;
    public final String embeddingSpaceId;
    public final PreprocessingSpec preprocessing;
    public final List<Artefact> artefacts;
    public final Map<String, Object> raw;

    private ModelManifest(String source, String modelName, String modelVersion, String backbone, int embeddingDim,
                          String embeddingSpaceId, PreprocessingSpec preprocessing, List<Artefact> artefacts,
                          Map<String, Object> raw) {
        this.source = source;
        this.modelName = modelName;
        this.modelVersion = modelVersion;
        this.backbone = backbone;
        this.embeddingDim = embeddingDim;
        this.embeddingSpaceId = embeddingSpaceId;
        this.preprocessing = preprocessing;
        this.artefacts = artefacts;
        this.raw = raw;
    }

    /** Parses manifest JSON text; {@code source} names it in errors. */
    @SuppressWarnings("unchecked")
    public static ModelManifest parse(String json, String source) {
        Map<String, Object> raw;
        try {
            raw = Json.parseObject(json);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": not valid JSON (" + e.getMessage() + ")");
        }
        if (!FORMAT.equals(raw.get("format"))) {
            throw new IllegalArgumentException(source + ": not a DeepProduct model manifest (format="
                    + pyRepr(raw.get("format")) + ")");
        }
        Object version = raw.get("manifest_version");
        if (!(version instanceof Long) || (Long) version > VERSION) {
            throw new IllegalArgumentException(source + ": manifest version " + pyRepr(version)
                    + " is newer than this SDK supports (" + VERSION + ")");
        }
        try {
            Map<String, Object> model = (Map<String, Object>) required(raw, "model");
            List<Artefact> arts = new ArrayList<Artefact>();
            Object list = raw.get("artefacts");
            if (list instanceof List) {
                for (Object o : (List<Object>) list) {
                    Map<String, Object> a = (Map<String, Object>) o;
                    arts.add(new Artefact((String) required(a, "file"), (String) required(a, "format"),
                            (String) required(a, "precision"), (String) required(a, "layout"),
                            stringOr(a, "input_name", "image"), stringOr(a, "output_name", "embedding"),
                            stringOr(a, "sha256", "")));
                }
            }
            return new ModelManifest(source, String.valueOf(required(model, "name")),
                    String.valueOf(required(model, "version")), String.valueOf(required(model, "backbone")),
                    Json.asInt(required(model, "embedding_dim"), "model.embedding_dim"),
                    (String) required(raw, "embedding_space_id"),
                    PreprocessingSpec.fromJson((Map<String, Object>) required(raw, "preprocessing")),
                    Collections.unmodifiableList(arts), raw);
        } catch (MissingField e) {
            throw new IllegalArgumentException(source + ": missing required field '" + e.getMessage() + "'");
        } catch (ClassCastException e) {
            throw new IllegalArgumentException(source + ": a manifest field has the wrong JSON type (" + e.getMessage() + ")");
        }
    }

    /** The artefact of a format ("onnx", "tflite", "coreml") and precision ("fp32", ...). */
    public Artefact artefact(String format, String precision) {
        StringBuilder have = new StringBuilder();
        for (Artefact a : artefacts) {
            if (a.format.equals(format) && a.precision.equals(precision)) {
                return a;
            }
            have.append(have.length() > 0 ? ", " : "").append(a.format).append('/').append(a.precision);
        }
        throw new IllegalArgumentException(source + ": no " + format + "/" + precision + " artefact (have: "
                + (have.length() > 0 ? have : "none") + ")");
    }

    private static final class MissingField extends RuntimeException {
        private static final long serialVersionUID = 1L;

        MissingField(String name) {
            super(name);
        }
    }

    private static Object required(Map<String, Object> m, String key) {
        if (!m.containsKey(key)) {
            throw new MissingField(key);
        }
        return m.get(key);
    }

    private static String stringOr(Map<String, Object> m, String key, String fallback) {
        Object v = m.get(key);
        return v instanceof String ? (String) v : fallback;
    }

    private static String pyRepr(Object v) {
        if (v == null) {
            return "None";
        }
        return v instanceof String ? "'" + v + "'" : String.valueOf(v);
    }
}
