package com.deepproduct.demo

import android.content.res.AssetManager
import android.graphics.Bitmap
import com.deepproduct.core.PreprocessingSpec
import com.deepproduct.core.Preprocessor
import org.tensorflow.lite.Interpreter
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel

/**
 * Runs the exported .tflite (NHWC float32 RGB in [0, 1]; normalisation folded into the graph) with
 * the LiteRT interpreter. Preprocessing is the core's port of the SDK's resize + crop, not the
 * Task Library's plain bilinear, so the tensor equals the Python SDK's for the same pixels.
 */
class Embedder(assets: AssetManager, modelAsset: String, private val spec: PreprocessingSpec) : AutoCloseable {
    private val interpreter: Interpreter
    private val input: ByteBuffer
    private val output: Array<FloatArray>

    init {
        // Memory-map the model from the APK (stored uncompressed: noCompress in build.gradle.kts).
        val fd = assets.openFd(modelAsset)
        val model = FileInputStream(fd.fileDescriptor).channel.use {
            it.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
        }
        interpreter = Interpreter(model, Interpreter.Options().setNumThreads(4))
        val shape = interpreter.getInputTensor(0).shape() // [1, S, S, 3]
        require(shape.size == 4 && shape[1] == spec.inputSize && shape[3] == 3) {
            "model input ${shape.contentToString()} does not match the manifest's input_size ${spec.inputSize} (NHWC)"
        }
        input = ByteBuffer.allocateDirect(4 * shape[1] * shape[2] * 3).order(ByteOrder.nativeOrder())
        output = arrayOf(FloatArray(interpreter.getOutputTensor(0).shape().last()))
    }

    /** The L2-normalised embedding of an upright (EXIF-applied) ARGB_8888 bitmap. */
    fun embed(bitmap: Bitmap): FloatArray {
        val pixels = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        val tensor = Preprocessor.preprocess(pixels, bitmap.width, bitmap.height, spec, Preprocessor.Layout.NHWC)
        input.rewind()
        input.asFloatBuffer().put(tensor)
        interpreter.run(input, output)
        return output[0].copyOf()
    }

    override fun close() = interpreter.close()
}
