package org.regnetkeras.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

/** The eight orientations against Pillow's ImageOps.exif_transpose on real JPEGs carrying each
 * tag (tools/android_goldens.py writes the JPEGs and the pixels). */
class ExifOrientationTest {
    private val cases = Goldens.cases("exif_orientation.json")

    @Test
    fun everyOrientationMatchesPillowsExifTranspose() {
        assertEquals((1..8).toList(), cases.map { Goldens.int(it["orientation"]) })
        for (case in cases) {
            val tag = Goldens.int(case["orientation"])
            val upright = ExifOrientation.fromTag(tag)
                .apply(Goldens.ints(case["argb"]), Goldens.int(case["width"]), Goldens.int(case["height"]))
            assertEquals("orientation $tag width", Goldens.int(case["upright_width"]), upright.width)
            assertEquals("orientation $tag height", Goldens.int(case["upright_height"]), upright.height)
            assertArrayEquals("orientation $tag pixels", Goldens.ints(case["upright_argb"]), upright.argb)
        }
    }

    @Test
    fun theGoldensTellEveryOrientationApart() {
        // Eight different upright pictures: a transform swapped for another cannot pass.
        val pictures = cases.map { Goldens.ints(it["upright_argb"]).toList() }
        assertEquals(8, pictures.toSet().size)
        val stored = cases.map { Goldens.ints(it["argb"]).toList() }.toSet()
        assertEquals("the JPEGs store the same pixels, only the tag differs", 1, stored.size)
    }

    @Test
    fun matrixValuesAreAndroidsLayoutOfTheSameMap() {
        for (orientation in ExifOrientation.values()) {
            val values = orientation.matrixValues()
            assertEquals(9, values.size)
            assertEquals(orientation.scaleX.toFloat(), values[0], 0f)  // MSCALE_X
            assertEquals(orientation.skewX.toFloat(), values[1], 0f)   // MSKEW_X
            assertEquals(orientation.skewY.toFloat(), values[3], 0f)   // MSKEW_Y
            assertEquals(orientation.scaleY.toFloat(), values[4], 0f)  // MSCALE_Y
            assertEquals(0f, values[2], 0f)
            assertEquals(0f, values[5], 0f)
            assertEquals(1f, values[8], 0f)
            // A rotation or a mirror: the map is invertible and keeps pixel size.
            val determinant = orientation.scaleX * orientation.scaleY - orientation.skewX * orientation.skewY
            assertEquals(1, Math.abs(determinant))
            assertEquals(orientation.tag >= 5, orientation.swapsSides)
        }
    }

    @Test
    fun mirroredOrientationsMirrorFirstThenRotate() {
        // The defect this class replaces: for 5 and 7, rotating before mirroring gives the
        // other diagonal, i.e. the picture turned by 180 degrees.
        val transpose = ExifOrientation.TRANSPOSE
        val transverse = ExifOrientation.TRANSVERSE
        val argb = IntArray(6) { it }
        val a = transpose.apply(argb, 3, 2)
        val b = transverse.apply(argb, 3, 2)
        val turned = ExifOrientation.ROTATE_180.apply(a.argb, a.width, a.height)
        assertArrayEquals(turned.argb, b.argb)
        assertFalse(a.argb.contentEquals(b.argb))
        // Transpose keeps the first stored pixel at the top left, as its definition says.
        assertEquals(0, a.argb[0])
    }

    @Test
    fun missingAndUndefinedTagsReadAsNormal() {
        for (tag in listOf(0, 9, -1, 65535)) assertEquals(ExifOrientation.NORMAL, ExifOrientation.fromTag(tag))
        for (tag in 1..8) assertEquals(tag, ExifOrientation.fromTag(tag).tag)
    }

    @Test
    fun refusesPixelsThatDoNotMatchTheSize() {
        try {
            ExifOrientation.ROTATE_90_CLOCKWISE.apply(IntArray(5), 3, 2)
            throw AssertionError("accepted 5 pixels for 3 x 2")
        } catch (error: IllegalArgumentException) {
            assertTrue(error.message!!.contains("3 x 2"))
        }
    }
}
