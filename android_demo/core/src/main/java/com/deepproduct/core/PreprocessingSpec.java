package com.deepproduct.core;

/**
 * The host-side half of the model's input contract (docs/method.md section 6), as recorded in the
 * model manifest's {@code preprocessing} object. Mirrors {@code deepproduct.sdk.preprocessing.PreprocessingSpec}.
 */
public final class PreprocessingSpec {
    public static final int SPEC_VERSION = 1;
    public static final String RESIZE_ALGORITHM = "triangle-antialias-half-pixel-v1";

    public final int inputSize;
    public final int resizeShorter;
    /** Background the alpha channel is composited over, 0..255 per channel (RGB). */
    public final int[] alphaBackground;

    public PreprocessingSpec(int inputSize, int resizeShorter, int[] alphaBackground) {
        if (inputSize <= 0 || resizeShorter < inputSize) {
            throw new IllegalArgumentException("preprocessing spec needs 0 < input_size <= resize_shorter, got input_size="
                    + inputSize + " resize_shorter=" + resizeShorter);
        }
        if (alphaBackground == null || alphaBackground.length != 3) {
            throw new IllegalArgumentException("alpha_background must have 3 values (RGB)");
        }
        this.inputSize = inputSize;
        this.resizeShorter = resizeShorter;
        this.alphaBackground = alphaBackground.clone();
    }

    /** The default contract: 224 px input, shorter side resized to 256, white background. */
    public static PreprocessingSpec defaults() {
        return forInputSize(224);
    }

    /** Shorter side resized to S * 256 / 224 rounded half up, the ImageNet convention. */
    public static PreprocessingSpec forInputSize(int inputSize) {
        return new PreprocessingSpec(inputSize, (int) Math.floor(inputSize * 256.0 / 224.0 + 0.5),
                new int[] {255, 255, 255});
    }

    /**
     * Reads the manifest's {@code preprocessing} object; refuses a newer spec version or another
     * resize algorithm, exactly like the Python SDK, because either would silently change the tensor.
     */
    public static PreprocessingSpec fromJson(java.util.Map<String, Object> d) {
        int version = d.containsKey("version") ? Json.asInt(d.get("version"), "preprocessing.version") : SPEC_VERSION;
        if (version > SPEC_VERSION) {
            throw new IllegalArgumentException("preprocessing spec version " + version
                    + " is newer than this SDK understands (" + SPEC_VERSION + "); upgrade deepproduct");
        }
        Object algo = d.containsKey("resize_algorithm") ? d.get("resize_algorithm") : RESIZE_ALGORITHM;
        if (!RESIZE_ALGORITHM.equals(algo)) {
            throw new IllegalArgumentException("unknown resize algorithm '" + algo + "'");
        }
        if (d.containsKey("colour_order") && !"RGB".equals(d.get("colour_order"))) {
            throw new IllegalArgumentException("unsupported colour_order '" + d.get("colour_order") + "' (only RGB)");
        }
        int input = d.containsKey("input_size") ? Json.asInt(d.get("input_size"), "preprocessing.input_size") : 224;
        int shorter = d.containsKey("resize_shorter") ? Json.asInt(d.get("resize_shorter"), "preprocessing.resize_shorter")
                : forInputSize(input).resizeShorter;
        int[] bg = {255, 255, 255};
        if (d.containsKey("alpha_background")) {
            java.util.List<?> list = (java.util.List<?>) d.get("alpha_background");
            if (list.size() != 3) {
                throw new IllegalArgumentException("preprocessing.alpha_background must have 3 values");
            }
            for (int i = 0; i < 3; i++) {
                bg[i] = Json.asInt(list.get(i), "preprocessing.alpha_background");
            }
        }
        return new PreprocessingSpec(input, shorter, bg);
    }
}
