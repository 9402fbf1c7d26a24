package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import org.junit.Test;

/** manifest.json reading with the errors of sdk_python/model_manifest.py. */
public class ModelManifestTest {
    static final String GOOD = "{\"format\": \"deepproduct-model-manifest\", \"manifest_version\": 1,"
            + " \"model\": {\"name\": \"m\", \"version\": 3, \"backbone\": \"efficientnet_lite0\", \"embedding_dim\": 128},"
            + " \"embedding_space_id\": \"space-1\","
            + " \"preprocessing\": {\"input_size\": 240, \"resize_shorter\": 274,"
            + "   \"resize_algorithm\": \"triangle-antialias-half-pixel-v1\", \"alpha_background\": [0, 0, 0], \"version\": 1},"
            + " \"artefacts\": [{\"file\": \"model.tflite\", \"format\": \"tflite\", \"precision\": \"fp32\", \"layout\": \"NHWC\"}]}";

    @Test
    public void readsTheFieldsAnAppNeeds() {
        ModelManifest m = ModelManifest.parse(GOOD, "manifest.json");
        assertEquals("space-1", m.embeddingSpaceId);
        assertEquals("3", m.modelVersion);
        assertEquals(128, m.embeddingDim);
        assertEquals(240, m.preprocessing.inputSize);
        assertEquals(274, m.preprocessing.resizeShorter);
        assertEquals(0, m.preprocessing.alphaBackground[0]);
        ModelManifest.Artefact a = m.artefact("tflite", "fp32");
        assertEquals("model.tflite", a.file);
        assertEquals("image", a.inputName);
        assertEquals("embedding", a.outputName);
    }

    private static void expectError(String json, String message) {
        try {
            ModelManifest.parse(json, "m.json");
            fail("accepted: " + json);
        } catch (IllegalArgumentException e) {
            assertEquals(message, e.getMessage());
        }
    }

    @Test
    public void errorsReadLikeThePythonSdk() {
        expectError("{\"format\": \"x\"}", "m.json: not a DeepProduct model manifest (format='x')");
        expectError("{\"format\": \"deepproduct-model-manifest\", \"manifest_version\": 2}",
                "m.json: manifest version 2 is newer than this SDK supports (1)");
        expectError("{\"format\": \"deepproduct-model-manifest\", \"manifest_version\": 1}",
                "m.json: missing required field 'model'");
        expectError(GOOD.replace("triangle-antialias-half-pixel-v1", "bilinear"), "unknown resize algorithm 'bilinear'");
        try {
            ModelManifest.parse(GOOD, "m.json").artefact("onnx", "fp32");
            fail("missing artefact accepted");
        } catch (IllegalArgumentException e) {
            assertEquals("m.json: no onnx/fp32 artefact (have: tflite/fp32)", e.getMessage());
        }
    }
}
