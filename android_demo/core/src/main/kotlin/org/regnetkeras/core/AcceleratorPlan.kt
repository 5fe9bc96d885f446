package org.regnetkeras.core

/** Where the user asks the model to run. */
enum class Accelerator { CPU, GPU }

/** The LiteRT API that runs a model: 2.x's CompiledModel (CPU or GPU), or the Interpreter,
 * which LiteRT 2.x keeps for compatibility and runs on the CPU only. */
enum class Engine(val description: String) {
    COMPILED_GPU("GPU (LiteRT CompiledModel)"),
    COMPILED_CPU("CPU (LiteRT CompiledModel, XNNPACK)"),
    INTERPRETER_CPU("CPU (LiteRT Interpreter, XNNPACK)")
}

/** The engines to try in order, and why the first is not what the user asked for (or null). */
class AcceleratorPlan(val engines: List<Engine>, val reason: String?)

/**
 * Picks the engines for a model before anything is loaded; what fails at load time (a device
 * without a usable GPU, an op the GPU cannot run) falls through to the next engine in the list
 * with the runtime's own message.
 */
object AcceleratorPlans {
    /**
     * LiteRT's Kotlin TensorBuffer reads and writes float32, int32 and int8 arrays, not uint8:
     * a model with a uint8 input or output runs on the Interpreter, which takes raw bytes.
     */
    fun plan(requested: Accelerator, input: TensorType, output: TensorType): AcceleratorPlan {
        val unsupported = listOf(input, output).firstOrNull { !compiledModelTakes(it) }
        if (unsupported != null) {
            val reason = "LiteRT's CompiledModel has no ${unsupported.jsonName} tensor buffers, so this " +
                "model runs on the Interpreter" + if (requested == Accelerator.GPU) ", on the CPU" else ""
            return AcceleratorPlan(listOf(Engine.INTERPRETER_CPU), reason)
        }
        return when (requested) {
            Accelerator.GPU -> AcceleratorPlan(listOf(Engine.COMPILED_GPU, Engine.COMPILED_CPU, Engine.INTERPRETER_CPU), null)
            Accelerator.CPU -> AcceleratorPlan(listOf(Engine.COMPILED_CPU, Engine.INTERPRETER_CPU), null)
        }
    }

    /** The message for falling back from [from] to [to] because of [problem]. */
    fun fallbackReason(from: Engine, to: Engine, problem: String): String =
        "${from.description} is unavailable ($problem); running on ${to.description} instead"

    private fun compiledModelTakes(type: TensorType): Boolean =
        type == TensorType.FLOAT32 || type == TensorType.INT8
}
