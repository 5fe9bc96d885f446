package org.regnetkeras.core

/**
 * A small strict JSON reader (RFC 8259) for model metadata.
 *
 * The core module depends on nothing but the Kotlin standard library, so that it compiles and
 * tests with a bare kotlinc as well as inside the Android build (where org.json exists but
 * would tie this code to Android). Values come back as plain Kotlin types:
 * objects as Map<String, Any?> (keys in file order), arrays as List<Any?>, strings as String,
 * numbers as Double (parsed with Java's correctly rounded Double.parseDouble, the same
 * double Python's json module reads), true/false as Boolean and null as null.
 */
object Json {
    class ParseException(message: String, val offset: Int) :
        IllegalArgumentException("$message at character $offset")

    fun parse(text: String): Any? {
        val reader = Reader(text)
        reader.skipWhitespace()
        val value = reader.readValue(0)
        reader.skipWhitespace()
        if (!reader.atEnd()) throw reader.error("unexpected text after the JSON value")
        return value
    }

    private const val MAX_DEPTH = 64

    private class Reader(val text: String) {
        var position = 0

        fun atEnd(): Boolean = position >= text.length

        fun error(message: String): ParseException = ParseException(message, position)

        fun skipWhitespace() {
            while (!atEnd()) {
                val c = text[position]
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t') position++ else return
            }
        }

        fun readValue(depth: Int): Any? {
            if (depth > MAX_DEPTH) throw error("JSON nested deeper than $MAX_DEPTH levels")
            if (atEnd()) throw error("unexpected end of JSON")
            val c = text[position]
            return when {
                c == '{' -> readObject(depth)
                c == '[' -> readArray(depth)
                c == '"' -> readString()
                c == '-' || (c in '0'..'9') -> readNumber()
                text.startsWith("true", position) -> { position += 4; true }
                text.startsWith("false", position) -> { position += 5; false }
                text.startsWith("null", position) -> { position += 4; null }
                else -> throw error("unexpected character '$c'")
            }
        }

        private fun expect(c: Char) {
            if (atEnd() || text[position] != c) throw error("expected '$c'")
            position++
        }

        private fun readObject(depth: Int): Map<String, Any?> {
            expect('{')
            val result = LinkedHashMap<String, Any?>()
            skipWhitespace()
            if (!atEnd() && text[position] == '}') {
                position++
                return result
            }
            while (true) {
                skipWhitespace()
                if (atEnd() || text[position] != '"') throw error("expected a string key")
                val key = readString()
                if (result.containsKey(key)) throw error("duplicate key \"$key\"")
                skipWhitespace()
                expect(':')
                skipWhitespace()
                result[key] = readValue(depth + 1)
                skipWhitespace()
                if (atEnd()) throw error("unexpected end of JSON in an object")
                when (text[position]) {
                    ',' -> position++
                    '}' -> { position++; return result }
                    else -> throw error("expected ',' or '}'")
                }
            }
        }

        private fun readArray(depth: Int): List<Any?> {
            expect('[')
            val result = ArrayList<Any?>()
            skipWhitespace()
            if (!atEnd() && text[position] == ']') {
                position++
                return result
            }
            while (true) {
                skipWhitespace()
                result.add(readValue(depth + 1))
                skipWhitespace()
                if (atEnd()) throw error("unexpected end of JSON in an array")
                when (text[position]) {
                    ',' -> position++
                    ']' -> { position++; return result }
                    else -> throw error("expected ',' or ']'")
                }
            }
        }

        private fun readString(): String {
            expect('"')
            val builder = StringBuilder()
            while (true) {
                if (atEnd()) throw error("unterminated string")
                val c = text[position++]
                when {
                    c == '"' -> return builder.toString()
                    c == '\\' -> {
                        if (atEnd()) throw error("unterminated escape")
                        when (val escaped = text[position++]) {
                            '"', '\\', '/' -> builder.append(escaped)
                            'b' -> builder.append('\b')
                            'f' -> builder.append('\u000C')
                            'n' -> builder.append('\n')
                            'r' -> builder.append('\r')
                            't' -> builder.append('\t')
                            'u' -> {
                                if (position + 4 > text.length) throw error("short \\u escape")
                                val hex = text.substring(position, position + 4)
                                val code = hex.toIntOrNull(16) ?: throw error("bad \\u escape")
                                builder.append(code.toChar())
                                position += 4
                            }
                            else -> throw error("unknown escape '\\$escaped'")
                        }
                    }
                    c < ' ' -> throw error("control character in a string")
                    else -> builder.append(c)
                }
            }
        }

        private fun readNumber(): Double {
            val start = position
            if (text[position] == '-') position++
            if (atEnd()) throw error("unexpected end of JSON in a number")
            if (text[position] == '0') {
                position++
            } else {
                if (text[position] !in '1'..'9') throw error("bad number")
                skipDigits()
            }
            if (!atEnd() && text[position] == '.') {
                position++
                if (atEnd() || text[position] !in '0'..'9') throw error("bad fraction")
                skipDigits()
            }
            if (!atEnd() && (text[position] == 'e' || text[position] == 'E')) {
                position++
                if (!atEnd() && (text[position] == '+' || text[position] == '-')) position++
                if (atEnd() || text[position] !in '0'..'9') throw error("bad exponent")
                skipDigits()
            }
            return java.lang.Double.parseDouble(text.substring(start, position))
        }

        private fun skipDigits() {
            while (!atEnd() && text[position] in '0'..'9') position++
        }
    }
}
