package com.deepproduct.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.awt.image.BufferedImage;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.Test;

/**
 * tests/vectors/images/expected.json: the resize + crop from the decoded pixels equals the SDK's
 * tensor (tensor_atol), and so does the ARGB path the app uses, fed by a real PNG decoder
 * (javax.imageio here, BitmapFactory on Android) for the 8-bit colour PNGs.
 */
public class PreprocessorTest {

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> images() throws Exception {
        return (List<Map<String, Object>>) Vectors.json("images/expected.json").get("images");
    }

    @SuppressWarnings("unchecked")
    private static PreprocessingSpec spec() throws Exception {
        return PreprocessingSpec.fromJson((Map<String, Object>) Vectors.json("images/expected.json").get("spec"));
    }

    private static double tol() throws Exception {
        return ((Number) Vectors.json("images/expected.json").get("tensor_atol")).doubleValue();
    }

    private static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }

    @Test
    public void specFromTheVectorsIs32From37() throws Exception {
        PreprocessingSpec s = spec();
        assertEquals(32, s.inputSize);
        assertEquals(37, s.resizeShorter);
        assertEquals(37, PreprocessingSpec.forInputSize(32).resizeShorter);
        assertEquals(256, PreprocessingSpec.defaults().resizeShorter);
    }

    @SuppressWarnings("unchecked")
    @Test
    public void resizeWeightsMatchTheWorkedExample() throws Exception {
        Map<String, Object> ex = (Map<String, Object>) Vectors.json("images/expected.json").get("resize_weights_example");
        int n = ((Number) ex.get("first_outputs")).intValue();
        Preprocessor.Taps t = Preprocessor.resizeWeights(((Number) ex.get("in")).intValue(),
                ((Number) ex.get("out")).intValue(), 0, n);
        List<Object> idx = (List<Object>) ex.get("indices");
        List<Object> w = (List<Object>) ex.get("weights");
        for (int o = 0; o < n; o++) {
            int[] wantIdx = Vectors.ints(idx.get(o));
            double[] wantW = Vectors.doubles(w.get(o));
            for (int k = 0; k < wantIdx.length; k++) {
                assertEquals("output " + o + " tap " + k, wantIdx[k], t.index[o * t.taps + k]);
                assertEquals("output " + o + " tap " + k, wantW[k], t.weight[o * t.taps + k], 0.0);
            }
        }
    }

    @Test
    public void resizedSizeAndCropOffsetsMatch() throws Exception {
        PreprocessingSpec s = spec();
        for (Map<String, Object> im : images()) {
            int[] shape = Vectors.ints(im.get("decoded_shape"));
            int[] size = Preprocessor.resizedSize(shape[0], shape[1], s.resizeShorter);
            assertArrayEquals((String) im.get("file"), Vectors.ints(im.get("resized_size")), size);
            int[] crop = Vectors.ints(im.get("crop_offset"));
            assertEquals(crop[0], (size[0] - s.inputSize) / 2);
            assertEquals(crop[1], (size[1] - s.inputSize) / 2);
        }
    }

    @Test
    public void tensorsFromDecodedPixelsMatchTheSdk() throws Exception {
        PreprocessingSpec s = spec();
        int n = 0;
        for (Map<String, Object> im : images()) {
            int[] shape = Vectors.ints(im.get("decoded_shape"));
            float[] decoded = Vectors.f32("images/" + im.get("decoded_file"));
            double[] rgb = new double[decoded.length];
            for (int i = 0; i < rgb.length; i++) {
                rgb[i] = decoded[i];
            }
            float[] want = Vectors.f32("images/" + im.get("expected_file"));
            float[] got = Preprocessor.preprocessRgb(rgb, shape[1], shape[0], s, Preprocessor.Layout.NCHW);
            double d = maxDiff(want, got);
            assertTrue(im.get("file") + ": max |diff| " + d, d <= tol());
            // NHWC is the transpose of NCHW.
            float[] nhwc = Preprocessor.preprocessRgb(rgb, shape[1], shape[0], s, Preprocessor.Layout.NHWC);
            int sz = s.inputSize;
            for (int c = 0; c < 3; c++) {
                for (int y = 0; y < sz; y += 7) {
                    for (int x = 0; x < sz; x += 5) {
                        assertEquals(got[(c * sz + y) * sz + x], nhwc[(y * sz + x) * 3 + c], 0f);
                    }
                }
            }
            n++;
        }
        assertEquals(10, n);
    }

    @Test
    public void argbPathFromARealPngDecoderMatchesTheSdk() throws Exception {
        PreprocessingSpec s = spec();
        int n = 0;
        for (Map<String, Object> im : images()) {
            String mode = (String) im.get("pillow_mode");
            String file = (String) im.get("file");
            // 8-bit colour, palette and RGBA PNGs: getRGB gives their sRGB values unchanged
            // (grey and 16-bit PNGs go through Java2D colour conversion, JPEG decoders differ).
            if (!file.endsWith(".png") || !(mode.equals("RGB") || mode.equals("RGBA") || mode.equals("P"))) {
                continue;
            }
            BufferedImage img = ImageIO.read(Vectors.file("images/" + file));
            int w = img.getWidth();
            int h = img.getHeight();
            int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
            float[] got = Preprocessor.preprocess(argb, w, h, s, Preprocessor.Layout.NCHW);
            float[] want = Vectors.f32("images/" + im.get("expected_file"));
            double atol = ((Number) im.get("full_pipeline_atol")).doubleValue();
            double d = maxDiff(want, got);
            assertTrue(file + ": max |diff| " + d, d <= atol);
            n++;
        }
        assertTrue("no PNG was checked through the ARGB path", n >= 4);
    }

    @Test
    public void badBuffersAreRefusedWithTheProblemNamed() {
        try {
            Preprocessor.preprocess(new int[10], 4, 4, PreprocessingSpec.defaults(), Preprocessor.Layout.NCHW);
            throw new AssertionError("accepted");
        } catch (IllegalArgumentException e) {
            assertEquals("ARGB buffer holds 10 pixels, a 4x4 image needs 16", e.getMessage());
        }
        try {
            Preprocessor.preprocess(new int[0], 0, 5, PreprocessingSpec.defaults(), Preprocessor.Layout.NCHW);
            throw new AssertionError("accepted");
        } catch (IllegalArgumentException e) {
            assertEquals("image has no pixels (0x5)", e.getMessage());
        }
    }
}
