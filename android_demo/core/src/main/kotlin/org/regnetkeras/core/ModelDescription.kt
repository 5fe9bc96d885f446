package org.regnetkeras.core

/** A model's input and output as the status line names them. */
object ModelDescription {
    /** "224x224 float32 input, float32 output" or, for a quantized model, with each tensor's
     * scale and zero point: "224x224 int8 input (scale 0.0078125, zero point -1), int8 output
     * (scale 0.00390625, zero point -128)". */
    fun describe(metadata: ModelMetadata): String {
        val input = metadata.input
        return "${input.width}x${input.height} ${tensor(input.type, input.quantization)} input, " +
            "${tensor(metadata.output.type, metadata.output.quantization)} output"
    }

    /** The type, with its quantization when it has one. */
    fun tensor(type: TensorType, quantization: Quantization?): String {
        if (!type.isQuantized || quantization == null) return type.jsonName
        return "${type.jsonName} (scale ${significant(quantization.scale)}, zero point ${quantization.zeroPoint})"
    }

    /** Six significant digits, without a trailing exponent for the scales that occur (1e-4..1). */
    private fun significant(value: Double): String =
        java.math.BigDecimal(value).round(java.math.MathContext(6)).stripTrailingZeros().toPlainString()
}
