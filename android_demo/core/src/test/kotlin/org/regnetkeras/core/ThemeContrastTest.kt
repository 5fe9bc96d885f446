package org.regnetkeras.core

import java.io.File
import javax.xml.parsers.DocumentBuilderFactory
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.w3c.dom.Element

/**
 * WCAG 2.1 contrast of the colours the app's light and dark themes define, read from the
 * resource files themselves (app/src/main/res), so that a colour change there is checked here.
 * Text must reach 4.5:1 against what it is drawn on (success criterion 1.4.3, level AA).
 */
class ThemeContrastTest {
    private val resources = File("../app/src/main/res")

    /** WCAG 2.1 relative luminance of an sRGB colour. */
    private fun luminance(rgb: Int): Double {
        fun channel(value: Int): Double {
            val c = value / 255.0
            return if (c <= 0.03928) c / 12.92 else Math.pow((c + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * channel(rgb shr 16 and 0xFF) + 0.7152 * channel(rgb shr 8 and 0xFF) +
            0.0722 * channel(rgb and 0xFF)
    }

    private fun contrast(a: Int, b: Int): Double {
        val (light, dark) = listOf(luminance(a), luminance(b)).sortedDescending()
        return (light + 0.05) / (dark + 0.05)
    }

    /** [argb] drawn over the opaque [below]: alpha compositing per channel. */
    private fun over(argb: Long, below: Int): Int {
        val alpha = (argb shr 24 and 0xFF) / 255.0
        fun mix(shift: Int): Int = Math.round(((argb shr shift) and 0xFF) * alpha + ((below shr shift) and 0xFF) * (1 - alpha)).toInt()
        return (mix(16) shl 16) or (mix(8) shl 8) or mix(0)
    }

    private fun elements(file: File, tag: String): List<Element> {
        assertTrue("$file is missing", file.isFile)
        val nodes = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(file).getElementsByTagName(tag)
        return (0 until nodes.length).map { nodes.item(it) as Element }
    }

    private fun colors(): Map<String, Long> = elements(File(resources, "values/colors.xml"), "color")
        .associate { it.getAttribute("name") to parseColor(it.textContent.trim()) }

    private fun parseColor(text: String): Long {
        assertTrue("not #RRGGBB or #AARRGGBB: $text", Regex("#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})").matches(text))
        val value = java.lang.Long.parseLong(text.substring(1), 16)
        return if (text.length == 7) value or 0xFF000000L else value
    }

    /** The theme's items, colour references resolved. */
    private fun theme(folder: String): Map<String, Int> {
        val colors = colors()
        val styles = elements(File(resources, "$folder/themes.xml"), "style")
            .filter { it.getAttribute("name") == "Theme.RegNetDemo" }
        assertEquals("one Theme.RegNetDemo in $folder", 1, styles.size)
        return elements(File(resources, "$folder/themes.xml"), "item").associate { item ->
            val value = item.textContent.trim()
            val color = if (value.startsWith("@color/")) colors[value.removePrefix("@color/")]
            else parseColor(value)
            item.getAttribute("name") to (color ?: error("$value is not defined")).toInt()
        }
    }

    @Test
    fun theContrastFormulaMatchesPublishedRatios() {
        assertEquals(21.0, contrast(0x000000, 0xFFFFFF), 1e-9)
        assertEquals(1.0, contrast(0x123456, 0x123456), 1e-9)
        // WebAIM's contrast checker: #777777 on white is 4.48:1, just under AA.
        assertEquals(4.48, contrast(0x777777, 0xFFFFFF), 0.005)
        // The colour the app used to hard-code for errors, on the dark surface: about 2.6:1.
        assertEquals(2.6, contrast(0xB3261E, 0x1C1B1F), 0.05)
    }

    @Test
    fun errorTextIsReadableInBothThemes() {
        for (folder in listOf("values", "values-night")) {
            val theme = theme(folder)
            for (background in listOf("colorSurface", "android:colorBackground")) {
                val error = theme["colorError"] ?: error("$folder defines no colorError")
                val under = theme[background] ?: error("$folder defines no $background")
                val ratio = contrast(error, under)
                assertTrue("$folder: colorError on $background is ${"%.2f".format(ratio)}:1", ratio >= 4.5)
                val text = theme["colorOnSurface"] ?: error("$folder defines no colorOnSurface")
                assertTrue("$folder: colorOnSurface on $background", contrast(text, under) >= 4.5)
            }
        }
    }

    @Test
    fun resultTextIsReadableOverAnyPicture() {
        val colors = colors()
        val panel = colors.getValue("overlay_background")
        val text = colors.getValue("overlay_text").toInt()
        // The translucent panel lies over the camera image: the worst cases are pure white and
        // pure black pictures behind it.
        for (picture in listOf(0xFFFFFF, 0x000000)) {
            val ratio = contrast(text, over(panel, picture))
            assertTrue("over #%06X: %.2f:1".format(picture, ratio), ratio >= 4.5)
        }
    }

    @Test
    fun theLayoutTakesTheErrorColourFromTheTheme() {
        val sources = File("../app/src/main/java").walk().filter { it.isFile && it.name.endsWith(".kt") }
            .map { it.readText() }.joinToString("\n")
        assertTrue("the app resolves ?attr/colorError", sources.contains("R.attr.colorError"))
        assertTrue("no fixed error colour is left", !File(resources, "values/colors.xml").readText().contains("error_text"))
    }
}
