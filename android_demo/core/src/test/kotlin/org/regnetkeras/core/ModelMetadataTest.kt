package org.regnetkeras.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class ModelMetadataTest {
    @Test
    fun readsTheConverterFormat() {
        val metadata = Goldens.metadata("uint8_pixels")
        assertEquals("golden_uint8_pixels", metadata.modelName)
        assertEquals("int8", metadata.variant)
        assertEquals(10, metadata.labels.size)
        assertEquals("T-shirt/top", metadata.labels[0])
        assertArrayEquals(intArrayOf(1, 20, 20, 3), metadata.input.shape)
        assertEquals(TensorType.UINT8, metadata.input.type)
        assertEquals(Quantization(1.0, 0), metadata.input.quantization)
        assertEquals(0.875, metadata.input.cropFraction, 0.0)
        assertEquals(TensorType.UINT8, metadata.output.type)
        assertEquals(Quantization(0.00390625, 0), metadata.output.quantization)
        assertEquals(OutputActivation.SOFTMAX, metadata.output.activation)

        val imagenet = Goldens.metadata("float32_imagenet_crop1")
        assertNull(imagenet.input.quantization)
        assertEquals(123.675, imagenet.input.mean(0), 0.0)
        assertEquals(57.375, imagenet.input.std(2), 0.0)
        assertEquals("caf\u00e9 \"latte\"", Goldens.metadata("float32_nonsquare").labels[0])
        assertEquals(OutputActivation.NONE, Goldens.metadata("int8").output.activation)
    }

    @Test
    fun everyGoldenVariantParses() {
        for (name in Goldens.metadataNames) {
            val outcome = ModelMetadata.read(Goldens.text("metadata/$name.json"))
            assertTrue("$name: $outcome", outcome is Outcome.Success)
        }
    }

    @Test
    fun refusesInvalidMetadataNamingTheFieldAsPythonDoes() {
        val cases = Goldens.cases("invalid_metadata.json")
        assertTrue(cases.size >= 20)
        for (case in cases) {
            val name = case["name"]
            val field = case["field"] as String
            try {
                ModelMetadata.fromJson(case["metadata"])
                fail("$name was accepted")
            } catch (error: ClassifierException) {
                val invalid = error.error as ClassifierError.InvalidMetadata
                assertEquals("$name: ${error.message}", field, invalid.field)
                assertTrue(error.message!!.contains("field $field "))
            }
        }
    }

    @Test
    fun newerVersionAsksForAnAppUpdate() {
        val text = Goldens.text("metadata/int8.json").replace("\"format_version\": 1", "\"format_version\": 3")
        val outcome = ModelMetadata.read(text) as Outcome.Failure
        assertEquals("Model metadata is not usable: field format_version 3 is newer than this " +
            "reader (1); update the app.", outcome.error.message)
    }

    @Test
    fun brokenJsonIsAFailureNotACrash() {
        val outcome = ModelMetadata.read("{\"format\": \"regnet_keras.tflite_metadata\",")
        val error = (outcome as Outcome.Failure).error as ClassifierError.InvalidMetadata
        assertEquals("(file)", error.field)
        assertTrue(error.problem.startsWith("is not valid JSON"))
    }

    private fun tensor(shape: IntArray, type: String, quantization: Quantization? = null) =
        TensorDescription(shape, type, quantization)

    private fun mismatchField(metadata: ModelMetadata, input: TensorDescription, output: TensorDescription): String {
        try {
            metadata.checkModel(input, output)
        } catch (error: ClassifierException) {
            return (error.error as ClassifierError.ModelMismatch).field
        }
        fail("the model was accepted")
        return ""
    }

    @Test
    fun checksTheModelTensorsAgainstTheMetadata() {
        val metadata = Goldens.metadata("uint8_pixels")
        val input = tensor(intArrayOf(1, 20, 20, 3), "uint8", Quantization(1.0, 0))
        val output = tensor(intArrayOf(1, 10), "uint8", Quantization(0.00390625, 0))
        metadata.checkModel(input, output)
        // The runtime reports float32 scales; they match within rounding.
        metadata.checkModel(input, tensor(intArrayOf(1, 10), "uint8", Quantization(0.0039062500001, 0)))

        assertEquals("input.shape", mismatchField(metadata, tensor(intArrayOf(1, 32, 32, 3), "uint8", Quantization(1.0, 0)), output))
        assertEquals("input.dtype", mismatchField(metadata, tensor(intArrayOf(1, 20, 20, 3), "float32"), output))
        assertEquals("input.quantization", mismatchField(metadata, tensor(intArrayOf(1, 20, 20, 3), "uint8", Quantization(1.0, 3)), output))
        assertEquals("labels", mismatchField(metadata, input, tensor(intArrayOf(1, 4), "uint8", Quantization(0.00390625, 0))))
        assertEquals("output", mismatchField(metadata, input, tensor(intArrayOf(10), "uint8", Quantization(0.00390625, 0))))
        assertEquals("output.dtype", mismatchField(metadata, input, tensor(intArrayOf(1, 10), "int16")))
        assertEquals("output.quantization", mismatchField(metadata, input, tensor(intArrayOf(1, 10), "uint8", null)))
    }

    @Test
    fun labelCountMismatchMessageNamesBothCounts() {
        val metadata = Goldens.metadata("float32_crop0875")
        try {
            metadata.checkModel(tensor(intArrayOf(1, 24, 24, 3), "float32"), tensor(intArrayOf(1, 4), "float32"))
            fail("accepted")
        } catch (error: ClassifierException) {
            assertEquals("Model file and metadata disagree: labels has 10 entries but the model " +
                "has 4 outputs.", error.message)
        }
    }
}
