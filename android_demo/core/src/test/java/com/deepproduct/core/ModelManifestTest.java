package com.deepproduct.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import org.junit.Test;

/** manifest.json reading with the errors of sdk_python/model_manifest.py (the schema enforced). */
public class ModelManifestTest {
    static String good() throws Exception {
        return new String(Vectors.bytes("bad/manifests/good.json"), "UTF-8");
    }

    @Test
    public void readsTheFieldsAnAppNeeds() throws Exception {
        ModelManifest m = ModelManifest.parse(good(), "manifest.json", HostileVectorsTest.schema());
        assertEquals("0000000000000000000000000000000000000000000000000000000000000000", m.embeddingSpaceId);
        assertEquals("1", m.modelVersion);
        assertEquals(16, m.embeddingDim);
        assertEquals(32, m.preprocessing.inputSize);
        assertEquals(37, m.preprocessing.resizeShorter);
        assertEquals(255, m.preprocessing.alphaBackground[0]);
        ModelManifest.Artefact a = m.artefact("onnx", "fp32");
        assertEquals("model.onnx", a.file);
        assertEquals("image", a.inputName);
        assertEquals("embedding", a.outputName);
    }

    private static void expectError(String json, String message) throws Exception {
        try {
            ModelManifest.parse(json, "m.json", HostileVectorsTest.schema());
            fail("accepted: " + json);
        } catch (IllegalArgumentException e) {
            assertEquals(message, e.getMessage());
        }
    }

    @Test
    public void errorsReadLikeThePythonSdk() throws Exception {
        expectError("{\"format\": \"x\"}", "m.json: not a DeepProduct model manifest (format='x')");
        expectError("{\"format\": \"deepproduct-model-manifest\", \"manifest_version\": 2}",
                "m.json: manifest version 2 is newer than this SDK supports (1)");
        expectError("{\"format\": \"deepproduct-model-manifest\", \"manifest_version\": 1}",
                "m.json: model: required field is missing (manifest schema)");
        try {
            ModelManifest.parse(good(), "m.json", null);
            fail("parsed without a schema");
        } catch (ModelManifest.ManifestException e) {
            assertEquals("m.json: no manifest schema given (bundle's manifest.schema.json)", e.getMessage());
        }
        try {
            ModelManifest.parse(good(), "m.json", HostileVectorsTest.schema()).artefact("tflite", "fp32");
            fail("missing artefact accepted");
        } catch (IllegalArgumentException e) {
            assertEquals("m.json: no tflite/fp32 artefact (have: onnx/fp32)", e.getMessage());
        }
    }
}
