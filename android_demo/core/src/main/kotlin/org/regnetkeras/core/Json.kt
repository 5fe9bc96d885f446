package org.regnetkeras.core

import com.google.gson.stream.JsonReader
import com.google.gson.stream.JsonToken
import java.io.IOException
import java.io.StringReader

/**
 * Reads model metadata JSON (RFC 8259) into plain Kotlin values with Gson's strict streaming
 * reader.
 *
 * Values come back as objects: Map<String, Any?> (keys in file order), arrays: List<Any?>,
 * strings: String, numbers: Double (Java's correctly rounded Double.parseDouble of the number's
 * text, the same double Python's json module reads), true/false: Boolean, null: null. Gson does
 * the tokenizing; this file adds what its tree API does not: duplicate keys and anything after
 * the value are refused, and nesting is bounded.
 */
object Json {
    /** The message is one line of at most [MAX_MESSAGE_CHARACTERS]: Gson's quote the path,
     * whose keys come from the file. */
    class ParseException(message: String) : IllegalArgumentException(oneLine(message, MAX_MESSAGE_CHARACTERS))

    private const val MAX_DEPTH = 64
    private const val MAX_MESSAGE_CHARACTERS = 200

    /** [text] with control characters escaped, cut to [limit] characters (then "..."). */
    fun oneLine(text: String, limit: Int): String {
        val line = StringBuilder()
        for (character in text) {
            if (line.length >= limit) return line.append("...").toString()
            if (character < ' ') line.append("\\u%04x".format(character.toInt())) else line.append(character)
        }
        return line.toString()
    }

    /** Gson's advice to developers when strict parsing fails; the user sees "malformed JSON". */
    private const val GSON_LENIENT_ADVICE = "Use JsonReader.setLenient(true) to accept malformed JSON"

    fun parse(text: String): Any? {
        val reader = JsonReader(StringReader(text))
        reader.isLenient = false
        try {
            val value = readValue(reader, 0)
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw ParseException("unexpected text after the JSON value at ${reader.path}")
            }
            return value
        } catch (error: IOException) {
            // MalformedJsonException and EOFException; the first line carries the position.
            val message = (error.message ?: error.javaClass.simpleName).lineSequence().first()
            throw ParseException(message.replace(GSON_LENIENT_ADVICE, "malformed JSON"))
        } catch (error: IllegalStateException) {
            throw ParseException(error.message ?: "malformed JSON")
        } catch (error: NumberFormatException) {
            // Gson's word for a \u escape whose four characters are not hexadecimal.
            throw ParseException("malformed JSON: bad escape ${error.message}")
        }
    }

    private fun readValue(reader: JsonReader, depth: Int): Any? {
        if (depth > MAX_DEPTH) throw ParseException("JSON nested deeper than $MAX_DEPTH levels at ${reader.path}")
        return when (reader.peek()) {
            JsonToken.BEGIN_OBJECT -> readObject(reader, depth)
            JsonToken.BEGIN_ARRAY -> readArray(reader, depth)
            JsonToken.STRING -> reader.nextString()
            // nextString() returns a number's own text, so no Gson conversion rounds it first.
            JsonToken.NUMBER -> java.lang.Double.parseDouble(reader.nextString())
            JsonToken.BOOLEAN -> reader.nextBoolean()
            JsonToken.NULL -> {
                reader.nextNull()
                null
            }
            else -> throw ParseException("expected a value at ${reader.path}")
        }
    }

    private fun readObject(reader: JsonReader, depth: Int): Map<String, Any?> {
        val result = LinkedHashMap<String, Any?>()
        reader.beginObject()
        while (reader.hasNext()) {
            val key = reader.nextName()
            if (result.containsKey(key)) {
                throw ParseException("duplicate key ${ModelMetadata.describe(key)} at ${reader.path}")
            }
            result[key] = readValue(reader, depth + 1)
        }
        reader.endObject()
        return result
    }

    private fun readArray(reader: JsonReader, depth: Int): List<Any?> {
        val result = ArrayList<Any?>()
        reader.beginArray()
        while (reader.hasNext()) result.add(readValue(reader, depth + 1))
        reader.endArray()
        return result
    }
}
