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

    /** A manifest that cannot be used; the message names the source and the failing field. */
    public static final class ManifestException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        public ManifestException(String message) {
            super(message);
        }
    }

    /** What this core's preprocessing implements (docs/preprocessing.md); anything else is refused. */
    static final String[][] SUPPORTED = {{"colour_order", "RGB"}, {"crop", "centre"}};

    /**
     * Parses manifest JSON text strictly, with the errors of sdk_python/model_manifest.py: the
     * schema (export/manifest.schema.json, shipped in the bundle as manifest.schema.json) enforced,
     * no defaults for required fields, artefact paths confined to the model folder.
     *
     * @param schemaJson the text of manifest.schema.json (there is no built-in copy)
     */
    /**
     * {@link #parse(String, String, String)} on the file's bytes, decoded strictly as UTF-8 (the
     * form to use for a file: a reader that replaced bad bytes with U+FFFD would accept them).
     */
    public static ModelManifest parse(byte[] json, String source, String schemaJson) {
        String text;
        try {
            text = Json.decodeUtf8(json);
        } catch (IllegalArgumentException e) {
            throw new ManifestException(source + ": not valid JSON (" + e.getMessage() + ")");
        }
        return parse(text, source, schemaJson);
    }

    @SuppressWarnings("unchecked")
    public static ModelManifest parse(String json, String source, String schemaJson) {
        if (schemaJson == null) {
            throw new ManifestException(source + ": no manifest schema given (bundle's manifest.schema.json)");
        }
        Map<String, Object> schema = Json.parseObject(schemaJson);
        Object parsed;
        try {
            parsed = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new ManifestException(source + ": not valid JSON (" + e.getMessage() + ")");
        }
        if (!(parsed instanceof Map)) {
            throw new ManifestException(source + ": (top level): a model manifest is a JSON object, not "
                    + (parsed instanceof List ? "list" : String.valueOf(parsed)));
        }
        Map<String, Object> raw = (Map<String, Object>) parsed;
        if (!FORMAT.equals(raw.get("format"))) {
            throw new ManifestException(source + ": not a DeepProduct model manifest (format="
                    + pyRepr(raw.get("format")) + ")");
        }
        Object version = raw.get("manifest_version");
        if (version instanceof Long && (Long) version > VERSION) {
            throw new ManifestException(source + ": manifest version " + version
                    + " is newer than this SDK supports (" + VERSION + ")");
        }
        if (!(version instanceof Long) || (Long) version != VERSION) {
            throw new ManifestException(source + ": manifest_version: " + pyRepr(version)
                    + " is not a valid version (this SDK reads the integer " + VERSION + ")");
        }
        try {
            JsonSchema.check(raw, schema);
        } catch (JsonSchema.Violation v) {
            throw new ManifestException(source + ": " + v.field + ": " + v.problem + " (manifest schema)");
        }
        Map<String, Object> pre = (Map<String, Object>) raw.get("preprocessing");
        for (String[] kv : SUPPORTED) {
            if (!kv[1].equals(pre.get(kv[0]))) {
                throw new ManifestException(source + ": preprocessing." + kv[0] + ": " + pyRepr(pre.get(kv[0]))
                        + " is not supported by this SDK (only '" + kv[1] + "'; docs/preprocessing.md)");
            }
        }
        List<Object> range = (List<Object>) pre.get("value_range");
        if (!Json.equal(range, java.util.Arrays.<Object>asList(0L, 1L))) {
            throw new ManifestException(source + ": preprocessing.value_range: " + range
                    + " is not supported by this SDK (only [0, 1]; docs/preprocessing.md)");
        }
        List<Artefact> arts = new ArrayList<Artefact>();
        List<Object> list = (List<Object>) raw.get("artefacts");
        for (int i = 0; i < list.size(); i++) {
            Map<String, Object> a = (Map<String, Object>) list.get(i);
            confine((String) a.get("file"), source + ": artefacts[" + i + "].file: file");
            arts.add(new Artefact((String) a.get("file"), (String) a.get("format"), (String) a.get("precision"),
                    (String) a.get("layout"), (String) a.get("input_name"), (String) a.get("output_name"),
                    (String) a.get("sha256")));
        }
        List<Object> files = (List<Object>) raw.get("files");
        for (int i = 0; i < files.size(); i++) {
            confine((String) ((Map<String, Object>) files.get(i)).get("path"), source + ": files[" + i + "].path: path");
        }
        Map<String, Object> model = (Map<String, Object>) raw.get("model");
        PreprocessingSpec spec;
        try {
            spec = PreprocessingSpec.fromJson(pre);
        } catch (IllegalArgumentException e) {
            throw new ManifestException(source + ": preprocessing: " + e.getMessage());
        }
        if (spec.resizeShorter < spec.inputSize) {
            throw new ManifestException(source + ": preprocessing.resize_shorter: " + spec.resizeShorter
                    + " is smaller than input_size " + spec.inputSize);
        }
        return new ModelManifest(source, (String) model.get("name"), (String) model.get("version"),
                (String) model.get("backbone"), Json.asInt(model.get("embedding_dim"), "model.embedding_dim"),
                (String) raw.get("embedding_space_id"), spec, Collections.unmodifiableList(arts), raw);
    }

    /** Refuses anything but a plain relative path inside the model folder (no "..", "/x", "C:"). */
    static void confine(String value, String what) {
        String[] parts = value.split("/", -1);
        boolean bad = value.isEmpty() || value.startsWith("/") || value.indexOf('\\') >= 0 || value.indexOf('\0') >= 0
                || parts[0].indexOf(':') >= 0;
        for (String part : parts) {
            bad |= part.isEmpty() || ".".equals(part) || "..".equals(part);
        }
        if (bad) {
            throw new ManifestException(what + " '" + value + "' is not a plain relative path inside the model folder");
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
        throw new ManifestException(source + ": no " + format + "/" + precision + " artefact (have: "
                + (have.length() > 0 ? have : "none") + ")");
    }

    private static String pyRepr(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Boolean) {
            return (Boolean) v ? "True" : "False";
        }
        return v instanceof String ? "'" + v + "'" : String.valueOf(v);
    }
}
