package org.regnetkeras.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** One class of a classification: its output index, label and probability. */
data class ScoredLabel(val index: Int, val label: String, val score: Double)

/**
 * Output tensor -> top-k, as regnet_keras.lite.image_preprocessing does it: dequantize
 * (q - zero_point) * scale, softmax when the model outputs logits, rank by descending score with
 * the lower class index first on equal scores. float64 throughout.
 */
object Postprocessor {
    /** The output tensor's values from [buffer] (absolute reads from 0), dequantized to float64. */
    fun readOutput(buffer: ByteBuffer, spec: OutputSpec, count: Int): DoubleArray {
        buffer.order(ByteOrder.nativeOrder())
        return when (spec.type) {
            TensorType.FLOAT32 -> DoubleArray(count) { buffer.getFloat(it * 4).toDouble() }
            TensorType.UINT8 -> dequantize(IntArray(count) { buffer.get(it).toInt() and 0xFF }, spec.quantization!!)
            TensorType.INT8 -> dequantize(IntArray(count) { buffer.get(it).toInt() }, spec.quantization!!)
        }
    }

    fun dequantize(values: IntArray, quantization: Quantization): DoubleArray =
        DoubleArray(values.size) { (values[it] - quantization.zeroPoint).toDouble() * quantization.scale }

    /** Probabilities; the largest logit is subtracted first so that exp cannot overflow. */
    fun softmax(logits: DoubleArray): DoubleArray {
        if (logits.isEmpty()) return DoubleArray(0)
        var largest = logits[0]
        for (value in logits) if (value > largest) largest = value
        val exponentials = DoubleArray(logits.size) { Math.exp(logits[it] - largest) }
        var total = 0.0
        for (value in exponentials) total += value
        return DoubleArray(logits.size) { exponentials[it] / total }
    }

    /** Class probabilities from dequantized output values. */
    fun scores(values: DoubleArray, spec: OutputSpec): DoubleArray =
        if (spec.activation == OutputActivation.NONE) softmax(values) else values

    /** The [k] highest scores, highest first; on equal scores the lower index comes first. */
    fun topK(scores: DoubleArray, labels: List<String>, k: Int): List<ScoredLabel> {
        if (scores.size != labels.size) {
            throw ClassifierException(ClassifierError.ModelMismatch("labels",
                "has ${labels.size} entries but the model has ${scores.size} outputs"))
        }
        val order = (0 until scores.size).sortedWith(Comparator { a, b ->
            val byScore = java.lang.Double.compare(scores[b], scores[a])
            if (byScore != 0) byScore else a - b
        })
        return order.take(k).map { ScoredLabel(it, labels[it], scores[it]) }
    }
}
