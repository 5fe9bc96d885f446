package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class JsonTest {
    @Test
    fun readsEveryValueTypeAndKeepsKeyOrder() {
        val value = Json.parse(" {\"b\": [1, -2.5e2, 0.1], \"a\": {\"t\": true, \"f\": false, \"n\": null}} ")
        val record = value as Map<*, *>
        assertEquals(listOf("b", "a"), record.keys.toList())
        assertEquals(listOf(1.0, -250.0, 0.1), record["b"])
        val inner = record["a"] as Map<*, *>
        assertEquals(true, inner["t"])
        assertEquals(false, inner["f"])
        assertTrue(inner.containsKey("n"))
        assertNull(inner["n"])
    }

    @Test
    fun decodesEscapesAsPythonJsonWritesThem() {
        val value = Json.parse("\"caf\\u00e9 \\\"latte\\\" \\t\\\\ \\u65e5\\/\"")
        assertEquals("caf\u00e9 \"latte\" \t\\ \u65e5/", value)
    }

    @Test
    fun numbersAreTheDoublesPythonReads() {
        // float32 values written by Python's repr of their double: exact round trip.
        val value = Json.parse("[0.10000000149011612, 1e-7, 123456789012, -0.0]") as List<*>
        assertEquals(0.1f, (value[0] as Double).toFloat(), 0f)
        assertEquals(0.10000000149011612, value[0] as Double, 0.0)
        assertEquals(1e-7, value[1] as Double, 0.0)
        assertEquals(123456789012.0, value[2] as Double, 0.0)
    }

    @Test
    fun refusesMalformedJsonWithThePosition() {
        // Gson's strict reader finds these; the message keeps its line, column and JSON path.
        val bad = mapOf(
            "[1, 2,]" to "malformed JSON at line 1 column 8 path \$[2]",
            "{\"a\": 1 \"b\": 2}" to "Unterminated object at line 1 column 10",
            "\"open" to "Unterminated string",
            "[01]" to "malformed JSON at line 1 column 2",
            "" to "End of input at line 1 column 1",
            "[1.]" to "malformed JSON",
            "nul" to "malformed JSON",
            "[NaN]" to "malformed JSON",
            "{'a': 1}" to "malformed JSON",
            "{\"a\": 1} // comment" to "malformed JSON",
            "[\"\\x\"]" to "Invalid escape sequence",
            // Gson throws NumberFormatException for a bad \u escape (found by byte flips).
            "[\"\\u65s5\"]" to "malformed JSON: bad escape")
        for ((text, expected) in bad) {
            try {
                Json.parse(text)
                fail("accepted $text")
            } catch (error: Json.ParseException) {
                val message = error.message ?: ""
                assertTrue("$text: $message", message.contains(expected))
                assertFalse("$text: $message", message.contains("setLenient"))
            }
        }
    }

    @Test
    fun refusesDuplicateKeysTrailingTextAndDeepNesting() {
        // Gson's JsonObject would keep the last of two equal keys; this reader refuses them.
        val bad = mapOf(
            "{\"a\": 1, \"a\": 2}" to "duplicate key \"a\"",
            "{} x" to "malformed JSON at line 1 column 5",
            "[1] [2]" to "malformed JSON at line 1 column 6",
            "[".repeat(70) + "]".repeat(70) to "nested deeper than 64 levels")
        for ((text, expected) in bad) {
            try {
                Json.parse(text)
                fail("accepted $text")
            } catch (error: Json.ParseException) {
                assertTrue("$text: ${error.message}", (error.message ?: "").contains(expected))
            }
        }
    }

    @Test
    fun messagesStayOneShortLineWhateverTheKeys() {
        // Gson's messages quote the JSON path, whose keys come from the file.
        val key = "k\n".repeat(5000)
        for (text in listOf("{\"$key\": 1, \"$key\": 2}", "{\"$key\": [1,]}")) {
            try {
                Json.parse(text.replace("\n", "\\n"))
                fail("accepted")
            } catch (error: Json.ParseException) {
                val message = error.message ?: ""
                assertFalse(message, message.contains('\n'))
                assertTrue(message, message.length <= 210)
            }
        }
    }
}
