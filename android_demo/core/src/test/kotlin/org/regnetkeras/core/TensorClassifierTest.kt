package org.regnetkeras.core

import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

class TensorClassifierTest {
    /** Stands in for LiteRT: records the input it is given and answers a fixed output tensor. */
    private class FakeRuntime(metadata: ModelMetadata, private val output: List<*>) : TensorClassifier(metadata) {
        var lastInput: ByteArray = ByteArray(0)
        var failure: RuntimeException? = null
        var closed = false

        override fun runModel(input: ByteBuffer, output: ByteBuffer) {
            failure?.let { throw it }
            lastInput = ByteArray(input.remaining())
            input.duplicate().get(lastInput)
            output.order(ByteOrder.nativeOrder())
            for ((i, value) in this.output.withIndex()) {
                val number = value as Double
                if (metadata.output.type == TensorType.FLOAT32) output.putFloat(i * 4, number.toFloat())
                else output.put(i, number.toInt().toByte())
            }
        }

        override fun close() {
            closed = true
        }
    }

    private fun golden(metadataName: String, imageName: String): Map<String, Any?> =
        Goldens.cases("preprocessing.json").first { it["metadata"] == metadataName && it["image"] == imageName }

    @Test
    fun quantizedModelReceivesThePythonTensorAndReportsThePythonTop5() {
        val metadata = Goldens.metadata("int8")
        val post = Goldens.cases("postprocessing.json").first { it["metadata"] == "int8" }
        val runtime = FakeRuntime(metadata, post["raw_output"] as List<*>)
        val image = Goldens.images.getValue("checker_23x41")
        val outcome = runtime.classify(image.argb, image.width, image.height)
        val result = (outcome as Outcome.Success).value
        val expectedInput = Goldens.ints(golden("int8", "checker_23x41")["values"])
        assertArrayEquals(expectedInput, IntArray(runtime.lastInput.size) { runtime.lastInput[it].toInt() })
        val expectedTop = (post["top5"] as List<*>).map { Goldens.int((it as Map<*, *>)["index"]) }
        assertEquals(expectedTop, result.top.map { it.index })
        assertTrue(result.preprocessMillis >= 0 && result.inferenceMillis >= 0 && result.postprocessMillis >= 0)
        assertEquals(result.preprocessMillis + result.inferenceMillis + result.postprocessMillis, result.totalMillis, 1e-9)
        runtime.close()
        assertTrue(runtime.closed)
    }

    @Test
    fun floatModelReceivesNativeOrderFloats() {
        val metadata = Goldens.metadata("float32_imagenet_crop1")
        val runtime = FakeRuntime(metadata, List(10) { it.toDouble() / 45 })
        val image = Goldens.images.getValue("small_13x11")
        val result = (runtime.classify(image.argb, image.width, image.height) as Outcome.Success).value
        val received = ByteBuffer.wrap(runtime.lastInput).order(ByteOrder.nativeOrder()).asFloatBuffer()
        val expected = Goldens.doubles(golden("float32_imagenet_crop1", "small_13x11")["values"])
        assertEquals(expected.size, received.remaining())
        for (i in expected.indices) assertEquals(expected[i].toFloat(), received.get(i), 0f)
        assertEquals(listOf(9, 8, 7, 6, 5), result.top.map { it.index })
        assertEquals("Ankle boot", result.top[0].label)
    }

    @Test
    fun badImagesAndRuntimeFailuresComeBackAsFailures() {
        val metadata = Goldens.metadata("uint8_pixels")
        val runtime = FakeRuntime(metadata, List(10) { 0.0 })
        val badImage = runtime.classify(IntArray(5), 4, 4) as Outcome.Failure
        assertTrue(badImage.error is ClassifierError.InvalidImage)
        assertEquals("Image cannot be classified: 5 pixels for a 4x4 image.", badImage.error.message)

        runtime.failure = IllegalArgumentException("Internal error: Failed to run on the given Interpreter")
        val failed = runtime.classify(IntArray(16), 4, 4) as Outcome.Failure
        assertEquals("Inference failed: Internal error: Failed to run on the given Interpreter.", failed.error.message)

        runtime.failure = null
        assertTrue(runtime.classify(IntArray(16), 4, 4) is Outcome.Success)
    }
}
