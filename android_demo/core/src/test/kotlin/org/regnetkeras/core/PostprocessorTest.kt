package org.regnetkeras.core

import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

class PostprocessorTest {
    private val scoreTolerance = 1e-12

    /** The golden raw output written into a buffer the way the runtime fills it. */
    private fun outputBuffer(raw: List<*>, type: TensorType): ByteBuffer {
        val buffer = ByteBuffer.allocateDirect(raw.size * type.bytesPerValue).order(ByteOrder.nativeOrder())
        for ((i, value) in raw.withIndex()) {
            val number = value as Double
            if (type == TensorType.FLOAT32) buffer.putFloat(i * 4, number.toFloat()) else buffer.put(i, number.toInt().toByte())
        }
        return buffer
    }

    @Test
    fun goldenOutputsGiveThePythonScoresAndTop5() {
        val cases = Goldens.cases("postprocessing.json")
        assertTrue(cases.size >= 10)
        for (case in cases) {
            val name = case["name"] as String
            val metadata = Goldens.metadata(case["metadata"] as String)
            val raw = case["raw_output"] as List<*>
            val values = Postprocessor.readOutput(outputBuffer(raw, metadata.output.type), metadata.output, raw.size)
            val scores = Postprocessor.scores(values, metadata.output)
            assertArrayEquals(name, Goldens.doubles(case["scores"]), scores, scoreTolerance)
            val expected = (case["top5"] as List<*>).map { it as Map<*, *> }
            val top = Postprocessor.topK(scores, metadata.labels, 5)
            assertEquals(name, expected.map { Goldens.int(it["index"]) }, top.map { it.index })
            assertEquals(name, expected.map { it["label"] }, top.map { it.label })
            for ((entry, scored) in expected.zip(top)) assertEquals(name, entry["score"] as Double, scored.score, scoreTolerance)
        }
    }

    @Test
    fun goldensCoverTiesQuantizedOutputsAndFewerThanFiveClasses() {
        val cases = Goldens.cases("postprocessing.json")
        val metadataNames = cases.map { it["metadata"] as String }.toSet()
        assertTrue(metadataNames.containsAll(listOf("uint8_pixels", "int8", "uint8_affine")))
        assertEquals(3, (cases.first { it["metadata"] == "uint8_affine" }["top5"] as List<*>).size)
    }

    @Test
    fun equalScoresRankTheLowerIndexFirst() {
        val labels = listOf("a", "b", "c", "d", "e", "f")
        val top = Postprocessor.topK(doubleArrayOf(0.1, 0.3, 0.3, 0.0, 0.3, 0.2), labels, 5)
        assertEquals(listOf(1, 2, 4, 5, 0), top.map { it.index })
        assertEquals(listOf("b", "c", "e", "f", "a"), top.map { it.label })
    }

    @Test
    fun dequantizesUint8AndInt8() {
        assertArrayEquals(doubleArrayOf(-1.0, 0.0, 125.0),
            Postprocessor.dequantize(intArrayOf(3, 5, 255), Quantization(0.5, 5)), 0.0)
        val spec = OutputSpec(TensorType.INT8, Quantization(0.25, -128), OutputActivation.SOFTMAX)
        val buffer = ByteBuffer.allocate(2)
        buffer.put(0, (-128).toByte())
        buffer.put(1, 127.toByte())
        assertArrayEquals(doubleArrayOf(0.0, 63.75), Postprocessor.readOutput(buffer, spec, 2), 0.0)
        val unsigned = OutputSpec(TensorType.UINT8, Quantization(1.0 / 256, 0), OutputActivation.SOFTMAX)
        buffer.put(0, 255.toByte())
        assertEquals(255.0 / 256, Postprocessor.readOutput(buffer, unsigned, 2)[0], 0.0)
    }

    @Test
    fun softmaxSurvivesLargeLogits() {
        val probabilities = Postprocessor.softmax(doubleArrayOf(1000.0, 1001.0, -1000.0))
        assertEquals(1.0, probabilities.sum(), 1e-12)
        assertEquals(1 / (1 + Math.E), probabilities[0], 1e-12)
        assertEquals(0.0, probabilities[2], 1e-300)
    }

    @Test
    fun labelCountMustMatchTheOutput() {
        try {
            Postprocessor.topK(doubleArrayOf(0.5, 0.5), listOf("only"), 5)
        } catch (error: ClassifierException) {
            assertEquals("labels", (error.error as ClassifierError.ModelMismatch).field)
            return
        }
        throw AssertionError("a label count mismatch was accepted")
    }
}
