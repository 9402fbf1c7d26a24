package com.deepproduct.core;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;

/**
 * Access to the shared {@code tests/vectors/} (README there): the folder comes from the system
 * property {@code deepproduct.vectors} (run_tests.sh, Gradle) or is found by walking up from the
 * working directory. Test code only: the core itself never touches files.
 */
final class Vectors {
    private static File root;

    private Vectors() {
    }

    static synchronized File root() {
        if (root == null) {
            String prop = System.getProperty("deepproduct.vectors");
            if (prop != null) {
                root = new File(prop);
            } else {
                for (File d = new File("").getAbsoluteFile(); d != null; d = d.getParentFile()) {
                    if (new File(d, "tests/vectors/README.md").isFile()) {
                        root = new File(d, "tests/vectors");
                        break;
                    }
                }
            }
            if (root == null || !root.isDirectory()) {
                throw new IllegalStateException("tests/vectors not found (set -Ddeepproduct.vectors=DIR)");
            }
        }
        return root;
    }

    static File file(String relative) {
        return new File(root(), relative);
    }

    static byte[] bytes(String relative) throws IOException {
        return Files.readAllBytes(file(relative).toPath());
    }

    static Map<String, Object> json(String relative) throws IOException {
        return Json.parseObject(new String(bytes(relative), "UTF-8"));
    }

    /** Raw little-endian float32 file. */
    static float[] f32(String relative) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes(relative)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static GalleryIndex index(String relative) throws IOException {
        return GalleryIndex.read(ByteBuffer.wrap(bytes(relative)), relative, true);
    }

    /** A JSON array of numbers as float32 (JSON numbers written from float32 round-trip exactly). */
    static float[] floats(Object jsonArray) {
        double[] values = doubles(jsonArray);
        float[] out = new float[values.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) values[i];
        }
        return out;
    }

    static double[] doubles(Object jsonArray) {
        return ((List<?>) jsonArray).stream().mapToDouble(v -> ((Number) v).doubleValue()).toArray();
    }

    static int[] ints(Object jsonArray) {
        return ((List<?>) jsonArray).stream().mapToInt(v -> ((Number) v).intValue()).toArray();
    }
}
