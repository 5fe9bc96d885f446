package org.regnetkeras.demo

import android.content.Context
import java.io.Closeable
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel
import org.regnetkeras.core.BundledModel
import org.regnetkeras.core.ClassifierError
import org.regnetkeras.core.ClassifierException
import org.regnetkeras.core.ModelMetadata
import org.regnetkeras.core.Outcome
import org.regnetkeras.core.Quantization
import org.regnetkeras.core.TensorClassifier
import org.regnetkeras.core.TensorDescription
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate

/** How to run a model: CPU threads for XNNPACK, and whether to try the GPU delegate. */
data class RuntimeOptions(val threads: Int, val useGpu: Boolean)

/** A ready classifier, the runtime it ended up on, and why it is not the one asked for. */
class LoadedClassifier(val classifier: LiteRtClassifier, val onGpu: Boolean, val gpuFallbackReason: String?) : Closeable {
    override fun close() = classifier.close()
}

/**
 * The core's [TensorClassifier] on the LiteRT Interpreter API. CPU inference goes through
 * XNNPACK (which runs RegNet's grouped convolutions natively in float and int8); NNAPI is never
 * used because it rejects grouped convolutions. Create, use and close it on one thread: the GPU
 * delegate is bound to the thread that created it. Errors (a native library that does not load,
 * memory) are left to the caller, which maps any Throwable with the core's Failures.
 */
class LiteRtClassifier private constructor(
    metadata: ModelMetadata,
    private val interpreter: Interpreter,
    private val gpuDelegate: GpuDelegate?
) : TensorClassifier(metadata) {

    override fun runModel(input: ByteBuffer, output: ByteBuffer) {
        interpreter.run(input, output)
    }

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }

    companion object {
        /**
         * Reads [model]'s metadata, loads the model, checks the two agree. With
         * [RuntimeOptions.useGpu], a device or model the GPU delegate cannot take falls back to
         * the CPU and says why in [LoadedClassifier.gpuFallbackReason].
         */
        fun load(context: Context, model: BundledModel, options: RuntimeOptions): Outcome<LoadedClassifier> =
            Outcome.of {
                val metadata = ModelMetadata.parse(readAssetText(context, model.metadataAsset))
                val modelBuffer = loadAsset(context, model.modelAsset)
                var gpuFallbackReason: String? = null
                var gpu: Pair<Interpreter, GpuDelegate>? = null
                if (options.useGpu) {
                    try {
                        gpu = createGpuInterpreter(modelBuffer, options.threads)
                    } catch (error: Exception) {
                        gpuFallbackReason = error.message ?: error.javaClass.simpleName
                    } catch (error: LinkageError) {
                        gpuFallbackReason = "the GPU delegate's native library is missing: ${error.message}"
                    }
                }
                val interpreter = gpu?.first ?: createCpuInterpreter(modelBuffer, options.threads, model)
                val delegate = gpu?.second
                try {
                    metadata.checkModel(describe(interpreter.getInputTensor(0)), describe(interpreter.getOutputTensor(0)))
                } catch (error: Throwable) {
                    interpreter.close()
                    delegate?.close()
                    throw error
                }
                LoadedClassifier(LiteRtClassifier(metadata, interpreter, delegate), delegate != null, gpuFallbackReason)
            }

        private fun createCpuInterpreter(model: ByteBuffer, threads: Int, asset: BundledModel): Interpreter {
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

        private fun createGpuInterpreter(model: ByteBuffer, threads: Int): Pair<Interpreter, GpuDelegate> {
            val compatibility = CompatibilityList()
            try {
                if (!compatibility.isDelegateSupportedOnThisDevice) {
                    throw UnsupportedOperationException("this device's GPU is not on LiteRT's compatibility list")
                }
                val delegate = GpuDelegate(compatibility.bestOptionsForThisDevice)
                try {
                    // Threads still matter for any op the delegate leaves to the CPU.
                    val options = Interpreter.Options().addDelegate(delegate).setNumThreads(threads)
                    return Pair(Interpreter(model, options), delegate)
                } catch (error: Throwable) {
                    delegate.close()
                    throw error
                }
            } finally {
                compatibility.close()
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

        private fun readAssetText(context: Context, name: String): String =
            try {
                context.assets.open(name).bufferedReader(Charsets.UTF_8).use { it.readText() }
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
}
