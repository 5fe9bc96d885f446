package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Test

class BundledModelsTest {
    @Test
    fun pairsModelsWithTheirMetadataAndReportsOrphans() {
        val catalog = BundledModels.find(listOf("README.md", "fashion_int8.tflite", "fashion_float32.json",
            "fashion_int8.json", "fashion_float32.tflite", "fashion_qat.tflite", "old.json"))
        assertEquals(listOf("fashion_float32", "fashion_int8"), catalog.models.map { it.name })
        assertEquals(BundledModel("fashion_int8", "fashion_int8.tflite", "fashion_int8.json"), catalog.models[1])
        assertEquals(listOf(
            "Model asset old.tflite is missing beside old.json.",
            "Model asset fashion_qat.json is missing beside fashion_qat.tflite (labels and input size come from it)."),
            catalog.problems.map { it.message })
    }

    @Test
    fun emptyAssetsGiveNoModels() {
        val catalog = BundledModels.find(listOf("README.md"))
        assertEquals(0, catalog.models.size)
        assertEquals(0, catalog.problems.size)
    }
}
