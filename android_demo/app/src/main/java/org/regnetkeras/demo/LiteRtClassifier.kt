package org.regnetkeras.demo

import android.content.Context
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.TensorBuffer
import java.io.Closeable
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel
import org.regnetkeras.core.AcceleratorPlans
import org.regnetkeras.core.BundledModel
import org.regnetkeras.core.ClassifierError
import org.regnetkeras.core.ClassifierException
import org.regnetkeras.core.Engine
import org.regnetkeras.core.ModelMetadata
import org.regnetkeras.core.Outcome
import org.regnetkeras.core.Quantization
import org.regnetkeras.core.RuntimeChoice
import org.regnetkeras.core.TensorClassifier
import org.regnetkeras.core.TensorDescription
import org.regnetkeras.core.TensorType
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import com.google.ai.edge.litert.Accelerator as LiteRtAccelerator

/** A ready classifier, the engine it ended up on, and why that is not the one asked for. */
class LoadedClassifier(val classifier: TensorClassifier, val engine: Engine, val fallbackReason: String?) : Closeable {
    override fun close() = classifier.close()
}

/**
 * Loads a bundled model on LiteRT 2.x: CompiledModel on the GPU or the CPU (XNNPACK) as the
 * official LiteRT samples do, or the Interpreter (CPU) for what CompiledModel's Kotlin API cannot
 * feed. The order and the reasons come from the core's [AcceleratorPlans]; an engine that fails
 * to compile the model (no usable GPU, an op the GPU cannot run) falls through to the next with
 * its message. NNAPI is never used: it rejects grouped convolutions, which every RegNet has.
 *
 * Create, use and close a classifier on one thread (the GPU accelerator is bound to it). Errors
 * the runtime throws past this (a native library that does not load, memory) are left to the
 * caller, which maps any Throwable with the core's Failures.
 */
object LiteRtClassifiers {
    fun load(context: Context, model: BundledModel, choice: RuntimeChoice): Outcome<LoadedClassifier> =
        Outcome.of {
            val metadata = readMetadataAsset(context, model.metadataAsset)
            val modelBuffer = loadAsset(context, model.modelAsset)
            // The Interpreter reads each tensor's shape, type and quantization, which CompiledModel's
            // API does not expose; the metadata must agree with them before anything runs.
            val interpreter = createInterpreter(modelBuffer, choice.threads, model)
            try {
                metadata.checkModel(describe(interpreter.getInputTensor(0)), describe(interpreter.getOutputTensor(0)))
            } catch (error: Throwable) {
                interpreter.close()
                throw error
            }
            val plan = AcceleratorPlans.plan(choice.accelerator, metadata.input.type, metadata.output.type)
            val reasons = listOfNotNull(plan.reason).toMutableList()
            for ((index, engine) in plan.engines.withIndex()) {
                val reason = if (reasons.isEmpty()) null else reasons.joinToString("; ")
                if (engine == Engine.INTERPRETER_CPU) {
                    return@of LoadedClassifier(InterpreterClassifier(metadata, interpreter), engine, reason)
                }
                val next = plan.engines.getOrElse(index + 1) { Engine.INTERPRETER_CPU }
                try {
                    val compiled = compile(context, model, engine, choice.threads)
                    val classifier = try {
                        CompiledModelClassifier(metadata, compiled)
                    } catch (error: Throwable) {
                        compiled.close()
                        throw error
                    }
                    // The Interpreter only served the tensor check; the compiled model runs.
                    interpreter.close()
                    return@of LoadedClassifier(classifier, engine, reason)
                } catch (error: Exception) {
                    reasons.add(fallback(engine, next, error))
                } catch (error: LinkageError) {
                    reasons.add(fallback(engine, next, error))
                }
            }
            interpreter.close()
            throw ClassifierException(ClassifierError.InferenceFailed("no LiteRT engine could load ${model.modelAsset}"))
        }

    private fun fallback(engine: Engine, next: Engine, error: Throwable): String =
        AcceleratorPlans.fallbackReason(engine, next, error.message ?: error.javaClass.simpleName)

    private fun compile(context: Context, model: BundledModel, engine: Engine, threads: Int): CompiledModel {
        val options = when (engine) {
            Engine.COMPILED_GPU -> CompiledModel.Options(LiteRtAccelerator.GPU)
            else -> CompiledModel.Options(LiteRtAccelerator.CPU).apply {
                cpuOptions = CompiledModel.CpuOptions(numThreads = threads)
            }
        }
        return CompiledModel.create(context.assets, model.modelAsset, options, null)
    }

    private fun createInterpreter(model: ByteBuffer, threads: Int, asset: BundledModel): Interpreter {
        val options = Interpreter.Options()
            .setNumThreads(threads)
            .setUseXNNPACK(true)
            .setUseNNAPI(false)
        try {
            return Interpreter(model, options)
        } catch (error: RuntimeException) {
            throw ClassifierException(ClassifierError.InferenceFailed(
                "${asset.modelAsset} is not a model LiteRT can load (${error.message})"))
        }
    }

    private fun describe(tensor: Tensor): TensorDescription {
        val typeName = when (tensor.dataType()) {
            DataType.FLOAT32 -> "float32"
            DataType.UINT8 -> "uint8"
            DataType.INT8 -> "int8"
            else -> tensor.dataType().toString().lowercase()
        }
        val parameters = tensor.quantizationParams()
        val quantization = if (parameters.scale == 0f) null
        else Quantization(parameters.scale.toDouble(), parameters.zeroPoint)
        return TensorDescription(tensor.shape(), typeName, quantization)
    }

    /** The metadata asset, read with the core's size bound and strict UTF-8 decoding. */
    private fun readMetadataAsset(context: Context, name: String): ModelMetadata =
        try {
            context.assets.open(name).use { ModelMetadata.parse(it) }
        } catch (error: IOException) {
            throw ClassifierException(ClassifierError.MissingAsset(name, "cannot be read (${error.message})"))
        }

    /** Memory-maps the model from the APK (stored uncompressed, see app/build.gradle.kts);
     * copies it into memory if a build compressed it anyway. */
    private fun loadAsset(context: Context, name: String): ByteBuffer {
        try {
            context.assets.openFd(name).use { descriptor ->
                FileInputStream(descriptor.fileDescriptor).channel.use { channel ->
                    return channel.map(FileChannel.MapMode.READ_ONLY, descriptor.startOffset, descriptor.declaredLength)
                }
            }
        } catch (compressed: IOException) {
            try {
                val bytes = context.assets.open(name).use { it.readBytes() }
                return ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).put(bytes).also { it.rewind() }
            } catch (error: IOException) {
                throw ClassifierException(ClassifierError.MissingAsset(name, "cannot be read (${error.message})"))
            }
        }
    }
}

/** The core's [TensorClassifier] on LiteRT 2.x's CompiledModel: the core's input buffer goes in
 * as a float32 or int8 array (the types [AcceleratorPlans] lets through), the output comes back
 * the same way. */
private class CompiledModelClassifier(metadata: ModelMetadata, private val model: CompiledModel) : TensorClassifier(metadata) {
    private val inputs: List<TensorBuffer> = model.createInputBuffers()
    private val outputs: List<TensorBuffer> = model.createOutputBuffers()
    private val floatInput = if (metadata.input.type == TensorType.FLOAT32) FloatArray(metadata.input.valueCount) else null
    private val byteInput = if (floatInput == null) ByteArray(metadata.input.valueCount) else null

    override fun runModel(input: ByteBuffer, output: ByteBuffer) {
        if (floatInput != null) {
            input.asFloatBuffer().get(floatInput)
            inputs[0].writeFloat(floatInput)
        } else {
            input.get(byteInput!!)
            inputs[0].writeInt8(byteInput)
        }
        model.run(inputs, outputs)
        if (metadata.output.type == TensorType.FLOAT32) {
            val values = outputs[0].readFloat()
            output.asFloatBuffer().put(checkedSize(values.size, output.capacity() / 4, values))
        } else {
            val values = outputs[0].readInt8()
            output.put(checkedSize(values.size, output.capacity(), values))
        }
    }

    private fun <T> checkedSize(actual: Int, expected: Int, values: T): T {
        if (actual != expected) {
            throw ClassifierException(ClassifierError.ModelMismatch("output", "has $actual values, not $expected"))
        }
        return values
    }

    override fun close() {
        inputs.forEach { it.close() }
        outputs.forEach { it.close() }
        model.close()
    }
}

/** The core's [TensorClassifier] on the Interpreter (CPU, XNNPACK), which takes the core's
 * buffers as they are. */
private class InterpreterClassifier(metadata: ModelMetadata, private val interpreter: Interpreter) : TensorClassifier(metadata) {
    override fun runModel(input: ByteBuffer, output: ByteBuffer) {
        interpreter.run(input, output)
    }

    override fun close() {
        interpreter.close()
    }
}
