package org.regnetkeras.core

import java.io.ByteArrayOutputStream
import java.io.InputStream
import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction

/** Tensor element types a converted RegNet takes or gives, by their metadata names. */
enum class TensorType(val jsonName: String, val bytesPerValue: Int, val minValue: Int, val maxValue: Int) {
    FLOAT32("float32", 4, 0, 0),
    UINT8("uint8", 1, 0, 255),
    INT8("int8", 1, -128, 127);

    val isQuantized: Boolean
        get() = this != FLOAT32

    companion object {
        fun fromJsonName(name: String): TensorType? = values().firstOrNull { it.jsonName == name }
    }
}

/** Affine integer encoding: real value = (q - zeroPoint) * scale. */
data class Quantization(val scale: Double, val zeroPoint: Int)

/** How the app turns a picture into the input tensor (docs/MODEL_METADATA.md). */
class InputSpec(
    val height: Int,
    val width: Int,
    val type: TensorType,
    /** Null for float32 inputs. */
    val quantization: Quantization?,
    mean: DoubleArray,
    std: DoubleArray,
    /** Side of the centered square taken from the picture, as a fraction of its shorter side. */
    val cropFraction: Double
) {
    private val meanValues = mean.copyOf()
    private val stdValues = std.copyOf()

    /** Per-channel (R, G, B) value subtracted from the 0-255 pixel. */
    fun mean(channel: Int): Double = meanValues[channel]

    /** Per-channel (R, G, B) divisor applied after the mean is subtracted. */
    fun std(channel: Int): Double = stdValues[channel]

    val shape: IntArray
        get() = intArrayOf(1, height, width, CHANNELS)

    val valueCount: Int
        get() = height * width * CHANNELS

    companion object {
        const val CHANNELS = 3
    }
}

enum class OutputActivation(val jsonName: String) {
    /** The model outputs probabilities. */
    SOFTMAX("softmax"),
    /** The model outputs logits; the app applies softmax. */
    NONE("none")
}

class OutputSpec(val type: TensorType, val quantization: Quantization?, val activation: OutputActivation)

/** A tensor as the runtime reports it, to check the metadata against the model file. */
class TensorDescription(
    val shape: IntArray,
    /** "float32", "uint8", "int8" or another runtime type name (refused). */
    val typeName: String,
    val quantization: Quantization?
)

/**
 * The sidecar JSON tools.convert writes beside each .tflite (docs/MODEL_METADATA.md): labels,
 * input geometry and numerics. [parse] refuses anything an app could not run correctly,
 * naming the field.
 */
class ModelMetadata(
    val modelName: String,
    val variant: String,
    val labels: List<String>,
    val input: InputSpec,
    val output: OutputSpec
) {
    /** Throws [ClassifierException] ([ClassifierError.ModelMismatch]) if the model file is
     * not the one this metadata describes. */
    fun checkModel(modelInput: TensorDescription, modelOutput: TensorDescription) {
        if (!modelInput.shape.contentEquals(input.shape)) {
            throw mismatch("input.shape", "is ${shapeText(input.shape)} in the metadata but " +
                "${shapeText(modelInput.shape)} in the model")
        }
        checkType("input", input.type, input.quantization, modelInput)
        val outputShape = modelOutput.shape
        if (outputShape.size != 2 || outputShape[0] != 1) {
            throw mismatch("output", "has shape ${shapeText(outputShape)} in the model; " +
                "expected [1, classes]")
        }
        if (outputShape[1] != labels.size) {
            throw mismatch("labels", "has ${labels.size} entries but the model has " +
                "${outputShape[1]} outputs")
        }
        checkType("output", output.type, output.quantization, modelOutput)
    }

    private fun checkType(prefix: String, type: TensorType, quantization: Quantization?,
                          model: TensorDescription) {
        if (model.typeName != type.jsonName) {
            throw mismatch("$prefix.dtype", "is ${type.jsonName} in the metadata but " +
                "${model.typeName} in the model")
        }
        if (quantization == null) return
        val actual = model.quantization
            ?: throw mismatch("$prefix.quantization", "is given in the metadata but the model " +
                "tensor has none")
        val scaleAgrees = Math.abs(actual.scale - quantization.scale) <=
            QUANTIZATION_SCALE_TOLERANCE * quantization.scale
        if (!scaleAgrees || actual.zeroPoint != quantization.zeroPoint) {
            throw mismatch("$prefix.quantization", "is (scale ${quantization.scale}, zero_point " +
                "${quantization.zeroPoint}) in the metadata but (scale ${actual.scale}, " +
                "zero_point ${actual.zeroPoint}) in the model")
        }
    }

    private fun mismatch(field: String, problem: String) =
        ClassifierException(ClassifierError.ModelMismatch(field, problem))

    companion object {
        const val FORMAT = "regnet_keras.tflite_metadata"
        const val VERSION = 1

        /** The metadata stores float32 scales as doubles; the runtime reports float32. */
        private const val QUANTIZATION_SCALE_TOLERANCE = 1e-6

        /**
         * Bounds that keep a crafted file's cost in proportion to a real one's, the same as
         * regnet_keras.lite.image_preprocessing's: ImageNet-21k's metadata is about 1 MB with
         * 21,843 labels.
         */
        const val MAX_METADATA_BYTES = 4 * 1024 * 1024
        const val MAX_LABELS = 100000
        const val MAX_LABEL_CHARACTERS = 256
        const val MAX_INPUT_SIDE = 4096

        /**
         * Normalisation and quantization parameters are bounded so that every value computed
         * from them is finite: (pixel - mean) / std within float32, value / scale and
         * (q - zeroPoint) * scale within double. Scales are float32's positive normal numbers,
         * as the .tflite stores them.
         */
        const val MAX_ABS_MEAN = 1e6
        const val MIN_STD = 1e-6
        const val MAX_STD = 1e6
        const val MIN_SCALE = 1.1754943508222875e-38
        const val MAX_SCALE = 3.4028234663852886e38

        /** Values quoted in messages are cut here, so that every message stays one short line. */
        private const val QUOTED_CHARACTERS = 60

        /**
         * Reads the metadata file from [stream] (an asset or a picked file), refusing it as soon
         * as it passes [MAX_METADATA_BYTES], then [parse]s it. The caller closes the stream.
         */
        fun parse(stream: InputStream): ModelMetadata {
            val buffer = ByteArrayOutputStream()
            val chunk = ByteArray(64 * 1024)
            while (true) {
                val count = stream.read(chunk)
                if (count < 0) break
                buffer.write(chunk, 0, count)
                if (buffer.size() > MAX_METADATA_BYTES) throw tooLarge("more than $MAX_METADATA_BYTES")
            }
            return parse(buffer.toByteArray())
        }

        /** [parse] of a file's bytes, which must be UTF-8 (RFC 8259). */
        fun parse(bytes: ByteArray): ModelMetadata {
            if (bytes.size > MAX_METADATA_BYTES) throw tooLarge("${bytes.size}")
            val text = try {
                Charsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString()
            } catch (error: CharacterCodingException) {
                throw invalid("(file)", "is not UTF-8 text; write it again with python -m tools.convert")
            }
            return parse(text)
        }

        /** Parses and validates; throws [ClassifierException] with [ClassifierError.InvalidMetadata]. */
        fun parse(text: String): ModelMetadata {
            // A UTF-8 file has at least as many bytes as characters.
            if (text.length > MAX_METADATA_BYTES) throw tooLarge("more than $MAX_METADATA_BYTES")
            val root = try {
                Json.parse(text)
            } catch (error: Json.ParseException) {
                throw invalid("(file)", "is not valid JSON: ${error.message}")
            }
            return fromJson(root)
        }

        /** [parse] as a value: the app shows a failure's message. */
        fun read(text: String): Outcome<ModelMetadata> = Outcome.of { parse(text) }

        /** Validation in the order of regnet_keras.lite.image_preprocessing.check_metadata. */
        fun fromJson(root: Any?): ModelMetadata {
            val record = root as? Map<*, *> ?: throw invalid("(root)", "must be a JSON object")
            val format = require(record, "format", "format")
            if (format != FORMAT) {
                throw invalid("format", "is ${describe(format)}, not \"$FORMAT\"")
            }
            val version = integer(require(record, "format_version", "format_version"), "format_version")
            if (version > VERSION) {
                throw invalid("format_version", "$version is newer than this reader ($VERSION); " +
                    "update the app")
            }
            if (version < 1) throw invalid("format_version", "$version is not a valid version")
            val modelName = string(require(record, "model_name", "model_name"), "model_name")
            val variant = string(require(record, "variant", "variant"), "variant")
            val labelValues = require(record, "labels", "labels")
            if (labelValues !is List<*> || labelValues.isEmpty() || labelValues.any { it !is String }) {
                throw invalid("labels", "must be a non-empty list of strings")
            }
            val labels = labelValues.map { it as String }
            if (labels.size > MAX_LABELS) {
                throw invalid("labels", "has ${labels.size} entries; a reader takes at most $MAX_LABELS")
            }
            val longest = labels.indices.maxBy { labels[it].length }!!
            if (labels[longest].length > MAX_LABEL_CHARACTERS) {
                throw invalid("labels", "entry $longest has ${labels[longest].length} characters; a " +
                    "reader takes at most $MAX_LABEL_CHARACTERS")
            }

            val input = require(record, "input", "input")
            val shape = require(input, "shape", "input.shape")
            val dimensions = (shape as? List<*>)?.map { positiveIntegerOrNull(it) }
            if (dimensions == null || dimensions.size != 4 || dimensions.any { it == null } ||
                dimensions[0] != 1 || dimensions[3] != InputSpec.CHANNELS) {
                throw invalid("input.shape", "is ${describe(shape)}; expected [1, height, width, 3]")
            }
            if (dimensions[1]!! > MAX_INPUT_SIDE || dimensions[2]!! > MAX_INPUT_SIDE) {
                throw invalid("input.shape", "is ${describe(shape)}; a reader takes height and width " +
                    "up to $MAX_INPUT_SIDE")
            }
            val layout = require(input, "layout", "input.layout")
            if (layout != "NHWC") throw invalid("input.layout", "is ${describe(layout)}; only NHWC is supported")
            val colorOrder = require(input, "color_order", "input.color_order")
            if (colorOrder != "RGB") {
                throw invalid("input.color_order", "is ${describe(colorOrder)}; only RGB is supported")
            }
            val inputType = tensorType(require(input, "dtype", "input.dtype"), "input.dtype")
            val inputQuantization = quantization(input, "input", inputType)
            val pixelRange = require(input, "pixel_range", "input.pixel_range")
            if (pixelRange !is List<*> || pixelRange.size != 2 || pixelRange[0] != 0.0 || pixelRange[1] != 255.0) {
                throw invalid("input.pixel_range", "is ${describe(pixelRange)}; apps feed 0-255 " +
                    "pixels, so only [0, 255] is supported")
            }
            val mean = channelValues(require(input, "mean", "input.mean"), "input.mean")
            val std = channelValues(require(input, "std", "input.std"), "input.std")
            if (mean.any { Math.abs(it) > MAX_ABS_MEAN }) {
                throw invalid("input.mean", "is ${describe(mean.toList())}; means of 0-255 pixels lie " +
                    "within +-1e+06")
            }
            if (std.any { it <= 0.0 }) throw invalid("input.std", "must be positive, not ${describe(std.toList())}")
            if (std.any { it < MIN_STD || it > MAX_STD }) {
                throw invalid("input.std", "is ${describe(std.toList())}; it must lie from 1e-06 to 1e+06")
            }
            val resize = require(input, "resize", "input.resize")
            val cropFraction = number(require(resize, "crop_fraction", "input.resize.crop_fraction"),
                "input.resize.crop_fraction")
            if (!(cropFraction > 0.0 && cropFraction <= 1.0)) {
                throw invalid("input.resize.crop_fraction", "must be in (0, 1], not ${describe(cropFraction)}")
            }
            val interpolation = require(resize, "interpolation", "input.resize.interpolation")
            if (interpolation != "bilinear") {
                throw invalid("input.resize.interpolation", "is ${describe(interpolation)}; this reader knows bilinear")
            }

            val output = require(record, "output", "output")
            val outputType = tensorType(require(output, "dtype", "output.dtype"), "output.dtype")
            val outputQuantization = quantization(output, "output", outputType)
            val activationName = require(output, "activation", "output.activation")
            val activation = OutputActivation.values().firstOrNull { it.jsonName == activationName }
                ?: throw invalid("output.activation", "is ${describe(activationName)}; this reader " +
                    "knows softmax, none")

            val (height, width) = Pair(dimensions[1]!!, dimensions[2]!!)
            return ModelMetadata(
                modelName, variant, labels,
                InputSpec(height, width, inputType, inputQuantization, mean, std, cropFraction),
                OutputSpec(outputType, outputQuantization, activation))
        }

        private fun invalid(field: String, problem: String) =
            ClassifierException(ClassifierError.InvalidMetadata(field, problem))

        private fun tooLarge(size: String) = invalid("(file)", "is $size bytes, more than metadata " +
            "ever needs ($MAX_METADATA_BYTES); write it again with python -m tools.convert")

        private fun require(container: Any?, key: String, field: String): Any? {
            val record = container as? Map<*, *> ?: throw invalid(field, "is missing")
            if (!record.containsKey(key)) throw invalid(field, "is missing")
            return record[key]
        }

        private fun string(value: Any?, field: String): String =
            value as? String ?: throw invalid(field, "must be a string")

        private fun number(value: Any?, field: String): Double {
            val number = value as? Double
            if (number == null || number.isNaN() || number.isInfinite()) {
                throw invalid(field, "must be a finite number, not ${describe(value)}")
            }
            return number
        }

        private fun integer(value: Any?, field: String): Int {
            val number = value as? Double
            if (number == null || number != Math.floor(number) || Math.abs(number) > Int.MAX_VALUE) {
                throw invalid(field, "must be an integer, not ${describe(value)}")
            }
            return number.toInt()
        }

        private fun positiveIntegerOrNull(value: Any?): Int? {
            val number = value as? Double ?: return null
            if (number != Math.floor(number) || number < 1.0 || number > Int.MAX_VALUE) return null
            return number.toInt()
        }

        private fun tensorType(value: Any?, field: String): TensorType =
            (value as? String)?.let { TensorType.fromJsonName(it) }
                ?: throw invalid(field, "is ${describe(value)}; this reader knows " +
                    TensorType.values().joinToString(", ") { it.jsonName })

        private fun quantization(spec: Any?, prefix: String, type: TensorType): Quantization? {
            val field = "$prefix.quantization"
            val value = require(spec, "quantization", field)
            if (!type.isQuantized) {
                if (value != null) throw invalid(field, "must be null for a float32 tensor")
                return null
            }
            if (value !is Map<*, *>) {
                throw invalid(field, "a ${type.jsonName} tensor needs {\"scale\", \"zero_point\"}")
            }
            val scale = number(require(value, "scale", "$field.scale"), "$field.scale")
            if (scale <= 0.0) throw invalid("$field.scale", "must be positive, not ${describe(scale)}")
            if (scale < MIN_SCALE || scale > MAX_SCALE) {
                throw invalid("$field.scale", "${describe(scale)} is not a normal float32 number " +
                    "(from $MIN_SCALE to $MAX_SCALE)")
            }
            val zeroPoint = integer(require(value, "zero_point", "$field.zero_point"), "$field.zero_point")
            if (zeroPoint < type.minValue || zeroPoint > type.maxValue) {
                throw invalid("$field.zero_point", "$zeroPoint is outside the ${type.jsonName} " +
                    "range [${type.minValue}, ${type.maxValue}]")
            }
            return Quantization(scale, zeroPoint)
        }

        private fun channelValues(value: Any?, field: String): DoubleArray {
            if (value !is List<*> || value.size != InputSpec.CHANNELS) {
                throw invalid(field, "must hold 3 numbers (R, G, B)")
            }
            return DoubleArray(InputSpec.CHANNELS) { number(value[it], field) }
        }

        /** A JSON value as it would read in the file, for error messages: one line, cut short. */
        internal fun describe(value: Any?): String = Json.oneLine(describeInFull(value), QUOTED_CHARACTERS)

        private fun describeInFull(value: Any?): String = when (value) {
            null -> "null"
            is String -> "\"${value.take(QUOTED_CHARACTERS + 1)}\""
            is Double -> if (value == Math.floor(value) && Math.abs(value) < 1e15) {
                value.toLong().toString()
            } else {
                value.toString()
            }
            // Enough elements to fill a quoted value, whatever the list's length.
            is List<*> -> value.joinToString(", ", "[", "]", limit = QUOTED_CHARACTERS / 2) {
                describeInFull(it)
            }
            is Map<*, *> -> "an object"
            else -> value.toString()
        }

        internal fun shapeText(shape: IntArray): String = shape.joinToString(", ", "[", "]")
    }
}
