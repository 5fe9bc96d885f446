package org.regnetkeras.core

import java.io.InputStream
import java.util.Random
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * Hostile metadata: every golden variant mutated field by field (deleted, retyped, non-finite,
 * huge, nested), cut at every length and byte-flipped with a fixed seed. Each mutant either
 * parses to metadata an app can run or fails with InvalidMetadata in one short line; no other
 * exception escapes. The web page's test (web_demo/test/metadata_mutations.test.mjs) applies
 * the same mutations.
 */
class ModelMetadataMutationTest {
    /** JSON text written as is (NaN, 1e999, deep nesting), which no Kotlin value serializes to. */
    private class Raw(val text: String)

    private val replacements: List<Any?> = listOf(
        null, true, "x", "", 0.0, -1.0, 0.5, 1.5, 255.0, 256.0, -129.0, 4097.0, 2147483648.0,
        1e308, -1e308, 4.9e-324, emptyList<Any?>(), emptyMap<String, Any?>(), listOf("a", "b"),
        listOf(1.0, 24.0, 24.0, 3.0), mapOf("scale" to 0.5, "zero_point" to 0.0),
        Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e999"), Raw("-0"),
        Raw("1" + "0".repeat(400)), Raw("[".repeat(70) + "]".repeat(70)),
        "x".repeat(ModelMetadata.MAX_LABEL_CHARACTERS + 1), "line\nbreak\u0000")

    @Test
    fun everyFieldMutationParsesOrIsRefusedInOneLine() {
        var mutants = 0
        var accepted = 0
        for (name in Goldens.metadataNames) {
            val base = Json.parse(Goldens.text("metadata/$name.json"))
            for (path in paths(base)) {
                if (path.isNotEmpty() && path.last() is String) {
                    if (check("$name: delete ${path}", toJson(edited(base, path, DELETE)))) accepted++
                    mutants++
                }
                for (value in replacements) {
                    val text = toJson(edited(base, path, value))
                    if (check("$name: ${path} = ${describe(value)}", text)) accepted++
                    mutants++
                }
            }
        }
        println("ModelMetadata: $mutants field mutations, $accepted accepted")
        assertTrue(mutants > 5000)
    }

    @Test
    fun hugeLabelListsAndLabelsAreRefused() {
        val base = Json.parse(Goldens.text("metadata/float32_crop0875.json"))
        val tooMany = List(ModelMetadata.MAX_LABELS + 1) { "a" }
        assertRefused("labels", toJson(edited(base, listOf("labels"), tooMany)))
        val tooLong = listOf("a", "b".repeat(ModelMetadata.MAX_LABEL_CHARACTERS + 1))
        assertRefused("labels", toJson(edited(base, listOf("labels"), tooLong)))
        for (side in listOf(0.0, -24.0, 4097.0, 1e9)) {
            assertRefused("input.shape", toJson(edited(base, listOf("input", "shape", 1), side)))
        }
    }

    @Test
    fun everyTruncationAndSeededByteFlipParsesOrIsRefused() {
        var mutants = 0
        for (name in listOf("uint8_affine", "float32_nonsquare")) {
            val bytes = Goldens.text("metadata/$name.json").toByteArray(Charsets.UTF_8)
            for (length in 0 until bytes.size) {
                checkBytes("$name cut at $length", bytes.copyOf(length))
                mutants++
            }
            val random = Random(27)
            repeat(3000) {
                val mutant = bytes.copyOf()
                repeat(1 + random.nextInt(8)) { mutant[random.nextInt(mutant.size)] = random.nextInt(256).toByte() }
                checkBytes("$name flip ${it}", mutant)
                mutants++
            }
        }
        println("ModelMetadata: $mutants truncations and byte flips")
    }

    @Test
    fun anEndlessOrHugeFileIsRefusedAtTheBound() {
        val endless = object : InputStream() {
            var served = 0L
            override fun read(): Int = if (served++ == 0L) '['.toInt() else ' '.toInt()
        }
        assertRefused("(file)") { ModelMetadata.parse(endless) }
        assertTrue(endless.served <= ModelMetadata.MAX_METADATA_BYTES + 128 * 1024)
        val huge = ByteArray(ModelMetadata.MAX_METADATA_BYTES + 1) { ' '.toByte() }
        assertRefused("(file)") { ModelMetadata.parse(huge) }
        assertRefused("(file)") { ModelMetadata.parse(byteArrayOf(0xC3.toByte(), 0x28)) }
    }

    private fun assertRefused(field: String, text: String) = assertRefused(field) { ModelMetadata.parse(text) }

    private fun assertRefused(field: String, block: () -> Unit) {
        try {
            block()
            fail("accepted; expected a refusal naming $field")
        } catch (error: ClassifierException) {
            assertEquals(error.message, field, (error.error as ClassifierError.InvalidMetadata).field)
        }
    }

    private fun checkBytes(what: String, bytes: ByteArray) {
        outcome(what) { ModelMetadata.parse(bytes) }
    }

    private fun check(what: String, text: String): Boolean = outcome(what) { ModelMetadata.parse(text) }

    /** True when accepted; fails the test on anything but a usable record or InvalidMetadata. */
    private fun outcome(what: String, parse: () -> ModelMetadata): Boolean {
        val metadata = try {
            parse()
        } catch (error: ClassifierException) {
            assertTrue("$what: ${error.error}", error.error is ClassifierError.InvalidMetadata)
            val message = error.message!!
            assertTrue("$what: message not one short line: $message",
                '\n' !in message && '\r' !in message && message.length <= 400)
            return false
        } catch (error: Throwable) {
            throw AssertionError("$what: ${error.javaClass.name} escaped: ${error.message}", error)
        }
        assertUsable(what, metadata)
        return true
    }

    private fun assertUsable(what: String, metadata: ModelMetadata) {
        val input = metadata.input
        assertTrue(what, metadata.labels.size in 1..ModelMetadata.MAX_LABELS)
        assertTrue(what, metadata.labels.all { it.length <= ModelMetadata.MAX_LABEL_CHARACTERS })
        assertTrue(what, input.height in 1..ModelMetadata.MAX_INPUT_SIDE)
        assertTrue(what, input.width in 1..ModelMetadata.MAX_INPUT_SIDE)
        assertTrue(what, input.valueCount == input.height * input.width * 3)
        for (channel in 0 until 3) {
            // The extremes of (pixel - mean) / std stay finite float32 values.
            for (pixel in listOf(0.0, 255.0)) {
                val value = ((pixel - input.mean(channel)) / input.std(channel)).toFloat()
                assertTrue(what, !value.isNaN() && !value.isInfinite())
            }
        }
        assertTrue(what, input.cropFraction > 0.0 && input.cropFraction <= 1.0)
        for ((type, quantization) in listOf(input.type to input.quantization,
                metadata.output.type to metadata.output.quantization)) {
            assertEquals(what, type.isQuantized, quantization != null)
            if (quantization != null) {
                assertTrue(what, quantization.scale >= ModelMetadata.MIN_SCALE &&
                    quantization.scale <= ModelMetadata.MAX_SCALE)
                assertTrue(what, quantization.zeroPoint in type.minValue..type.maxValue)
            }
        }
    }

    private object DELETE

    /** Every path into [value] (object keys and list indices), the root's included. */
    private fun paths(value: Any?, prefix: List<Any> = emptyList()): List<List<Any>> {
        val children = when (value) {
            is Map<*, *> -> value.entries.flatMap { paths(it.value, prefix + (it.key as String)) }
            is List<*> -> value.indices.flatMap { paths(value[it], prefix + it) }
            else -> emptyList()
        }
        return listOf(prefix) + children
    }

    /** A copy of [value] with the value at [path] replaced (or deleted: [DELETE]). */
    private fun edited(value: Any?, path: List<Any>, replacement: Any?): Any? {
        if (path.isEmpty()) return replacement
        val key = path.first()
        val rest = path.drop(1)
        return when (value) {
            is Map<*, *> -> {
                val copy = LinkedHashMap<Any?, Any?>(value)
                if (rest.isEmpty() && replacement === DELETE) copy.remove(key) else copy[key] = edited(value[key], rest, replacement)
                copy
            }
            is List<*> -> value.mapIndexed { index, item -> if (index == key) edited(item, rest, replacement) else item }
            else -> value
        }
    }

    private fun describe(value: Any?): String = if (value is Raw) value.text.take(20) else ModelMetadata.describe(value)

    private fun toJson(value: Any?): String = when (value) {
        null -> "null"
        is Raw -> value.text
        is Boolean -> value.toString()
        is Double -> if (value == Math.floor(value) && Math.abs(value) < 1e15) value.toLong().toString() else value.toString()
        is String -> buildString {
            append('"')
            for (character in value) {
                when {
                    character == '"' -> append("\\\"")
                    character == '\\' -> append("\\\\")
                    character < ' ' -> append("\\u%04x".format(character.toInt()))
                    else -> append(character)
                }
            }
            append('"')
        }
        is Map<*, *> -> value.entries.joinToString(", ", "{", "}") { toJson(it.key) + ": " + toJson(it.value) }
        is List<*> -> value.joinToString(", ", "[", "]") { toJson(it) }
        else -> throw IllegalArgumentException("not a JSON value: $value")
    }
}
