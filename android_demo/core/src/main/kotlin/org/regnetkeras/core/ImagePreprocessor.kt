package org.regnetkeras.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** The centered square of a picture the model input is resized from. */
data class CropBox(val top: Int, val left: Int, val side: Int) {
    companion object {
        /** Side round_half_up(cropFraction x shorter side), at least one pixel, centered
         * (the extra pixel of an odd margin goes to the bottom/right). */
        fun centered(height: Int, width: Int, cropFraction: Double): CropBox {
            val shorter = Math.min(height, width)
            val side = Math.min(shorter, Math.max(1, Math.floor(cropFraction * shorter + 0.5).toInt()))
            return CropBox((height - side) / 2, (width - side) / 2, side)
        }
    }
}

/**
 * One axis of the resize: for each output index, the first source index and the normalised
 * weights of the sources from there. TensorFlow's ScaleAndTranslate with the triangle kernel
 * and antialiasing (what tf.image.resize(method="bilinear", antialias=True) runs): output x
 * samples the source at (x + 0.5) * in/out; the kernel 1 - |d| / kernelScale widens with the
 * downscale factor so that shrinking averages every source pixel instead of skipping some.
 * The arithmetic follows regnet_keras.lite.image_preprocessing.resize_weights operation by operation.
 */
internal class ResizeWeights(inSize: Int, val outSize: Int) {
    val starts = IntArray(outSize)
    val counts = IntArray(outSize)
    val offsets = IntArray(outSize)
    val weights: DoubleArray

    init {
        val inverseScale = inSize.toDouble() / outSize
        val kernelScale = Math.max(inverseScale, 1.0)
        val all = ArrayList<Double>()
        for (x in 0 until outSize) {
            val sample = (x + 0.5) * inverseScale
            val start = Math.max(Math.ceil(sample - kernelScale - 0.5).toInt(), 0)
            val end = Math.min(Math.floor(sample + kernelScale - 0.5).toInt(), inSize - 1) + 1
            val span = DoubleArray(end - start)
            var total = 0.0
            for (source in start until end) {
                val weight = Math.max(0.0, 1.0 - Math.abs(source + 0.5 - sample) / kernelScale)
                span[source - start] = weight
                total += weight
            }
            starts[x] = start
            counts[x] = span.size
            offsets[x] = all.size
            for (weight in span) all.add(weight / total)
        }
        weights = all.toDoubleArray()
    }
}

/**
 * ARGB_8888 pixels (Android's Bitmap.getPixels layout: row by row, 0xAARRGGBB) -> the model's
 * input tensor, exactly as regnet_keras.lite.image_preprocessing.prepare_image makes it: centered
 * square crop, antialiased bilinear resize (vertical pass, then horizontal), (pixel - mean) / std,
 * then a float32 cast or quantization with round-half-to-even and clamping. Computed in
 * float64 in the same order of operations as the Python reference, so both give the same
 * float32 values and the same integers. Alpha is ignored.
 *
 * Not thread-safe: it reuses its buffers from frame to frame (camera frames share a size).
 */
class ImagePreprocessor(private val spec: InputSpec) {
    private val normalized = DoubleArray(spec.valueCount)
    private var geometry: Geometry? = null

    private class Geometry(val width: Int, val height: Int, val crop: CropBox,
                           val vertical: ResizeWeights, val horizontal: ResizeWeights) {
        val rows = DoubleArray(vertical.outSize * crop.side * InputSpec.CHANNELS)
    }

    /** Float32 inputs: the tensor values, NHWC. */
    fun prepareFloat(argb: IntArray, width: Int, height: Int): FloatArray {
        requireType(spec.type == TensorType.FLOAT32)
        normalize(argb, width, height)
        return FloatArray(normalized.size) { normalized[it].toFloat() }
    }

    /** Integer inputs: the quantized values as integers (0..255 for uint8, -128..127 for int8). */
    fun prepareQuantized(argb: IntArray, width: Int, height: Int): IntArray {
        requireType(spec.type.isQuantized)
        normalize(argb, width, height)
        return IntArray(normalized.size) { quantize(normalized[it]) }
    }

    /**
     * Writes the input tensor into [buffer] from position 0 in the runtime's layout: native-order
     * float32 values, or one byte per quantized value. [buffer] must hold
     * [InputSpec.valueCount] x [TensorType.bytesPerValue] bytes.
     */
    fun prepareInto(argb: IntArray, width: Int, height: Int, buffer: ByteBuffer) {
        val needed = spec.valueCount * spec.type.bytesPerValue
        if (buffer.capacity() < needed) {
            throw IllegalArgumentException("input buffer holds ${buffer.capacity()} bytes, the model needs $needed")
        }
        normalize(argb, width, height)
        buffer.order(ByteOrder.nativeOrder())
        if (spec.type == TensorType.FLOAT32) {
            for (i in normalized.indices) buffer.putFloat(i * 4, normalized[i].toFloat())
        } else {
            for (i in normalized.indices) buffer.put(i, quantize(normalized[i]).toByte())
        }
    }

    private fun requireType(matches: Boolean) {
        if (!matches) {
            throw IllegalStateException("the model input is ${spec.type.jsonName}; use the matching prepare function")
        }
    }

    private fun quantize(value: Double): Int {
        val quantization = spec.quantization!!
        val q = Math.rint(value / quantization.scale) + quantization.zeroPoint
        return Math.min(spec.type.maxValue.toDouble(), Math.max(spec.type.minValue.toDouble(), q)).toInt()
    }

    private fun geometryFor(width: Int, height: Int): Geometry {
        val current = geometry
        if (current != null && current.width == width && current.height == height) return current
        val crop = CropBox.centered(height, width, spec.cropFraction)
        val created = Geometry(width, height, crop, ResizeWeights(crop.side, spec.height),
            ResizeWeights(crop.side, spec.width))
        geometry = created
        return created
    }

    private fun checkImage(argb: IntArray, width: Int, height: Int) {
        if (width <= 0 || height <= 0) {
            throw ClassifierException(ClassifierError.InvalidImage("its size is ${width}x$height"))
        }
        if (argb.size.toLong() != width.toLong() * height) {
            throw ClassifierException(ClassifierError.InvalidImage(
                "${argb.size} pixels for a ${width}x$height image"))
        }
    }

    /** Fills [normalized] with (resized pixel - mean) / std, NHWC. */
    private fun normalize(argb: IntArray, width: Int, height: Int) {
        checkImage(argb, width, height)
        val g = geometryFor(width, height)
        val side = g.crop.side
        val rows = g.rows
        java.util.Arrays.fill(rows, 0.0)
        val vertical = g.vertical
        for (y in 0 until vertical.outSize) {
            val rowBase = y * side * 3
            for (k in 0 until vertical.counts[y]) {
                val weight = vertical.weights[vertical.offsets[y] + k]
                val pixelBase = (g.crop.top + vertical.starts[y] + k) * width + g.crop.left
                for (column in 0 until side) {
                    val pixel = argb[pixelBase + column]
                    val at = rowBase + column * 3
                    rows[at] = rows[at] + weight * ((pixel shr 16) and 0xFF)
                    rows[at + 1] = rows[at + 1] + weight * ((pixel shr 8) and 0xFF)
                    rows[at + 2] = rows[at + 2] + weight * (pixel and 0xFF)
                }
            }
        }
        val horizontal = g.horizontal
        for (y in 0 until spec.height) {
            val rowBase = y * side * 3
            for (x in 0 until spec.width) {
                var red = 0.0
                var green = 0.0
                var blue = 0.0
                for (k in 0 until horizontal.counts[x]) {
                    val weight = horizontal.weights[horizontal.offsets[x] + k]
                    val at = rowBase + (horizontal.starts[x] + k) * 3
                    red += weight * rows[at]
                    green += weight * rows[at + 1]
                    blue += weight * rows[at + 2]
                }
                val out = (y * spec.width + x) * 3
                normalized[out] = (red - spec.mean(0)) / spec.std(0)
                normalized[out + 1] = (green - spec.mean(1)) / spec.std(1)
                normalized[out + 2] = (blue - spec.mean(2)) / spec.std(2)
            }
        }
    }
}
