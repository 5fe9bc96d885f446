package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.fail
import org.junit.Test

/** The small decisions moved out of the app: thread counts, result settings, median latency,
 * engine plans, model descriptions. */
class CoreChoicesTest {
    @Test
    fun threadChoicesFollowTheCores() {
        assertEquals(listOf(1), ThreadChoices.forCores(1))
        assertEquals(listOf(1), ThreadChoices.forCores(0))
        assertEquals(listOf(1, 2), ThreadChoices.forCores(2))
        assertEquals(listOf(1, 2, 3), ThreadChoices.forCores(3))
        assertEquals(listOf(1, 2, 4), ThreadChoices.forCores(4))
        assertEquals(listOf(1, 2, 4, 8), ThreadChoices.forCores(8))
        assertEquals(4, ThreadChoices.default(ThreadChoices.forCores(8)))
        assertEquals(3, ThreadChoices.default(ThreadChoices.forCores(3)))
        assertEquals(1, ThreadChoices.default(ThreadChoices.forCores(1)))
    }

    @Test
    fun resultSettingsKeepTheBestAboveTheThreshold() {
        val top = listOf(ScoredLabel(4, "dress", 0.61), ScoredLabel(0, "shirt", 0.2),
            ScoredLabel(6, "coat", 0.1), ScoredLabel(2, "bag", 0.05), ScoredLabel(1, "boot", 0.04))
        assertEquals(listOf("dress", "shirt", "coat"), ResultSettings().select(top).map { it.label })
        assertEquals(listOf("dress", "shirt"), ResultSettings(5, 0.2).select(top).map { it.label })
        assertEquals(listOf("dress"), ResultSettings(1, 0.0).select(top).map { it.label })
        assertEquals(emptyList<ScoredLabel>(), ResultSettings(5, 0.7).select(top))
        assertEquals(listOf(1, 2, 3, 4, 5), ResultSettings.MAX_RESULT_CHOICES)
        assertEquals(10, ResultSettings.THRESHOLD_CHOICES.size)
        for (bad in listOf(Pair(0, 0.0), Pair(6, 0.0), Pair(3, -0.1), Pair(3, 1.0), Pair(3, Double.NaN))) {
            try {
                ResultSettings(bad.first, bad.second)
                fail("accepted $bad")
            } catch (expected: IllegalArgumentException) {
            }
        }
    }

    @Test
    fun latencyIsTheMedianOfTheWindow() {
        val window = LatencyWindow(4)
        assertEquals(0.0, window.median(), 0.0)
        window.record(5.0)
        assertEquals(5.0, window.median(), 0.0)
        window.record(1.0)
        assertEquals(3.0, window.median(), 0.0)
        window.record(100.0)
        assertEquals(5.0, window.median(), 0.0)
        window.record(2.0)
        window.record(3.0)  // 5.0 leaves the window: 1, 100, 2, 3
        assertEquals(2.5, window.median(), 0.0)
        assertEquals(4, window.size)
        window.reset()
        assertEquals(0, window.size)
    }

    @Test
    fun gpuFallsThroughToTheCpuAndUint8ModelsUseTheInterpreter() {
        val gpu = AcceleratorPlans.plan(Accelerator.GPU, TensorType.FLOAT32, TensorType.FLOAT32)
        assertEquals(listOf(Engine.COMPILED_GPU, Engine.COMPILED_CPU, Engine.INTERPRETER_CPU), gpu.engines)
        assertNull(gpu.reason)
        val cpu = AcceleratorPlans.plan(Accelerator.CPU, TensorType.INT8, TensorType.INT8)
        assertEquals(listOf(Engine.COMPILED_CPU, Engine.INTERPRETER_CPU), cpu.engines)
        val uint8 = AcceleratorPlans.plan(Accelerator.GPU, TensorType.UINT8, TensorType.FLOAT32)
        assertEquals(listOf(Engine.INTERPRETER_CPU), uint8.engines)
        assertEquals("LiteRT's CompiledModel has no uint8 tensor buffers, so this model runs on the " +
            "Interpreter, on the CPU", uint8.reason)
        assertEquals(listOf(Engine.INTERPRETER_CPU),
            AcceleratorPlans.plan(Accelerator.CPU, TensorType.FLOAT32, TensorType.UINT8).engines)
        assertEquals("GPU (LiteRT CompiledModel) is unavailable (no OpenCL); running on CPU (LiteRT " +
            "CompiledModel, XNNPACK) instead",
            AcceleratorPlans.fallbackReason(Engine.COMPILED_GPU, Engine.COMPILED_CPU, "no OpenCL"))
    }

    @Test
    fun quantizationIsDescribedWithScaleAndZeroPoint() {
        assertEquals("float32", ModelDescription.tensor(TensorType.FLOAT32, null))
        assertEquals("int8 (scale 0.0078125, zero point -1)",
            ModelDescription.tensor(TensorType.INT8, Quantization(1.0 / 128, -1)))
        assertEquals("uint8 (scale 0.00392157, zero point 0)",
            ModelDescription.tensor(TensorType.UINT8, Quantization(1.0 / 255, 0)))
        assertEquals("int8 (scale 0.1, zero point 3)", ModelDescription.tensor(TensorType.INT8, Quantization(0.1, 3)))
    }
}
