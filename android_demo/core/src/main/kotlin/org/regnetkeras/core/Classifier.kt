package org.regnetkeras.core

import java.io.Closeable
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Top classes of one picture and where the time went, in milliseconds. */
class ClassificationResult(
    val top: List<ScoredLabel>,
    val preprocessMillis: Double,
    val inferenceMillis: Double,
    val postprocessMillis: Double
) {
    val totalMillis: Double
        get() = preprocessMillis + inferenceMillis + postprocessMillis
}

/** Classifies ARGB_8888 pictures with one model; the app implements it with LiteRT. */
interface Classifier : Closeable {
    val metadata: ModelMetadata

    /** [argb]: width x height pixels, row by row (Bitmap.getPixels). Never throws for bad input
     * or a failing runtime: those come back as [Outcome.Failure]. */
    fun classify(argb: IntArray, width: Int, height: Int): Outcome<ClassificationResult>
}

/**
 * A [Classifier] around any runtime that reads an input buffer and writes an output buffer:
 * preprocessing, output decoding, top-k and timing live here, so a runtime binding only
 * implements [runModel]. Buffers are direct and in native order, as LiteRT's Interpreter wants.
 */
abstract class TensorClassifier(
    final override val metadata: ModelMetadata,
    private val topK: Int = DEFAULT_TOP_K
) : Classifier {
    private val preprocessor = ImagePreprocessor(metadata.input)
    private val inputBuffer: ByteBuffer = ByteBuffer
        .allocateDirect(metadata.input.valueCount * metadata.input.type.bytesPerValue)
        .order(ByteOrder.nativeOrder())
    private val outputBuffer: ByteBuffer = ByteBuffer
        .allocateDirect(metadata.labels.size * metadata.output.type.bytesPerValue)
        .order(ByteOrder.nativeOrder())

    /** Runs the model on [input] (the whole input tensor) and fills [output]. Runtime failures
     * may throw any RuntimeException; they are reported as [ClassifierError.InferenceFailed]. */
    protected abstract fun runModel(input: ByteBuffer, output: ByteBuffer)

    override fun classify(argb: IntArray, width: Int, height: Int): Outcome<ClassificationResult> =
        Outcome.of {
            val start = System.nanoTime()
            preprocessor.prepareInto(argb, width, height, inputBuffer)
            val prepared = System.nanoTime()
            inputBuffer.rewind()
            outputBuffer.rewind()
            try {
                runModel(inputBuffer, outputBuffer)
            } catch (error: ClassifierException) {
                throw error
            } catch (error: RuntimeException) {
                throw ClassifierException(ClassifierError.InferenceFailed(
                    error.message ?: error.javaClass.simpleName))
            }
            val inferred = System.nanoTime()
            val values = Postprocessor.readOutput(outputBuffer, metadata.output, metadata.labels.size)
            val top = Postprocessor.topK(Postprocessor.scores(values, metadata.output), metadata.labels, topK)
            val finished = System.nanoTime()
            ClassificationResult(top, millis(prepared - start), millis(inferred - prepared), millis(finished - inferred))
        }

    private fun millis(nanos: Long): Double = nanos / 1e6

    companion object {
        const val DEFAULT_TOP_K = 5
    }
}
