package org.regnetkeras.core

import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class ImagePreprocessorTest {
    /** Float inputs agree with the Python reference within this (they are computed identically,
     * so the measured difference is expected to be 0). */
    private val floatTolerance = 1e-6

    @Test
    fun everyGoldenImageThroughEveryVariantGivesThePythonTensor() {
        val cases = Goldens.cases("preprocessing.json")
        assertEquals(Goldens.images.size * Goldens.metadataNames.size, cases.size)
        // One preprocessor per variant, fed images of changing sizes: its cached geometry must follow.
        val preprocessors = Goldens.metadataNames.map { it to ImagePreprocessor(Goldens.metadata(it).input) }.toMap()
        var largestFloatDifference = 0.0
        var quantizedValues = 0
        for (case in cases) {
            val image = Goldens.images.getValue(case["image"] as String)
            val metadata = Goldens.metadata(case["metadata"] as String)
            val preprocessor = preprocessors.getValue(case["metadata"] as String)
            val where = "${image.name} through ${case["metadata"]}"
            assertArrayEquals(where, metadata.input.shape, Goldens.ints(case["shape"]))
            assertEquals(where, metadata.input.type.jsonName, case["dtype"])
            if (metadata.input.type == TensorType.FLOAT32) {
                val expected = Goldens.doubles(case["values"])
                val actual = preprocessor.prepareFloat(image.argb, image.width, image.height)
                assertEquals(where, expected.size, actual.size)
                for (i in expected.indices) {
                    val difference = Math.abs(actual[i] - expected[i])
                    if (difference > largestFloatDifference) largestFloatDifference = difference
                    assertTrue("$where [$i]: ${actual[i]} vs ${expected[i]}", difference <= floatTolerance)
                }
            } else {
                val expected = Goldens.ints(case["values"])
                assertArrayEquals(where, expected, preprocessor.prepareQuantized(image.argb, image.width, image.height))
                quantizedValues += expected.size
            }
        }
        println("preprocessing parity: largest |float difference| = $largestFloatDifference, " +
            "$quantizedValues quantized values all equal")
    }

    @Test
    fun quantizedGoldensExerciseClampingAtBothEnds() {
        val values = Goldens.cases("preprocessing.json")
            .filter { it["metadata"] == "uint8_affine" }
            .flatMap { Goldens.ints(it["values"]).toList() }
        assertTrue(values.contains(0))
        assertTrue(values.contains(255))
    }

    @Test
    fun bufferHoldsTheSameTensorInTheRuntimeLayout() {
        val image = Goldens.images.getValue("texture_64x48")
        for (name in listOf("float32_crop0875", "int8", "uint8_affine")) {
            val spec = Goldens.metadata(name).input
            val preprocessor = ImagePreprocessor(spec)
            val buffer = ByteBuffer.allocateDirect(spec.valueCount * spec.type.bytesPerValue)
            preprocessor.prepareInto(image.argb, image.width, image.height, buffer)
            buffer.order(ByteOrder.nativeOrder())
            if (spec.type == TensorType.FLOAT32) {
                val expected = preprocessor.prepareFloat(image.argb, image.width, image.height)
                for (i in expected.indices) assertEquals(expected[i], buffer.getFloat(i * 4), 0f)
            } else {
                val expected = preprocessor.prepareQuantized(image.argb, image.width, image.height)
                for (i in expected.indices) {
                    val stored = buffer.get(i).toInt()
                    assertEquals(expected[i], if (spec.type == TensorType.UINT8) stored and 0xFF else stored)
                }
            }
        }
    }

    @Test
    fun alphaIsIgnored() {
        val spec = Goldens.metadata("float32_crop0875").input
        val image = Goldens.images.getValue("gradient_37x23")
        val transparent = IntArray(image.argb.size) { image.argb[it] and 0x00FFFFFF }
        val preprocessor = ImagePreprocessor(spec)
        assertArrayEquals(preprocessor.prepareFloat(image.argb, image.width, image.height),
            preprocessor.prepareFloat(transparent, image.width, image.height), 0f)
    }

    @Test
    fun uniformPictureStaysUniformAtEverySize() {
        val spec = Goldens.metadata("uint8_pixels").input
        val preprocessor = ImagePreprocessor(spec)
        for ((width, height) in listOf(Pair(640, 480), Pair(3, 7), Pair(20, 20))) {
            val argb = IntArray(width * height) { 0xFF4D4D4D.toInt() }
            val values = preprocessor.prepareQuantized(argb, width, height)
            assertTrue("${width}x$height", values.all { it == 0x4D })
        }
    }

    @Test
    fun cropIsCenteredWithRoundHalfUp() {
        assertEquals(CropBox(0, 7, 23), CropBox.centered(23, 37, 1.0))
        assertEquals(CropBox(1, 8, 20), CropBox.centered(23, 37, 0.875))
        assertEquals(CropBox(10, 1, 20), CropBox.centered(41, 23, 0.875))
        assertEquals(CropBox(2, 3, 6), CropBox.centered(11, 13, 0.5))
        assertEquals(CropBox(0, 0, 1), CropBox.centered(1, 1, 0.1))
    }

    @Test
    fun shrinkingAveragesWithBorderRenormalisation() {
        // The example of tests/test_image_preprocessing.py: 4 -> 2 samples.
        val weights = ResizeWeights(4, 2)
        assertArrayEquals(intArrayOf(0, 1), weights.starts)
        assertArrayEquals(intArrayOf(3, 3), weights.counts)
        assertArrayEquals(doubleArrayOf(3 / 7.0, 3 / 7.0, 1 / 7.0, 1 / 7.0, 3 / 7.0, 3 / 7.0), weights.weights, 1e-15)
    }

    @Test
    fun badImagesAreClassifierErrors() {
        val preprocessor = ImagePreprocessor(Goldens.metadata("float32_crop0875").input)
        val attempts = listOf(Triple(IntArray(11), 3, 4), Triple(IntArray(0), 0, 0), Triple(IntArray(4), -2, -2))
        for ((argb, width, height) in attempts) {
            try {
                preprocessor.prepareFloat(argb, width, height)
                fail("accepted ${argb.size} pixels as ${width}x$height")
            } catch (error: ClassifierException) {
                assertTrue(error.error is ClassifierError.InvalidImage)
            }
        }
    }
}
