package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class PhotoSamplingTest {
    /** BitmapFactory's rule: inSampleSize is used as the power of two at or below it, and a
     * side of n pixels decodes to ceil(n / sample). Written out here independently of the code. */
    private fun decodedLongest(width: Int, height: Int, requested: Int): Int {
        var power = 1
        while (power * 2 <= requested) power *= 2
        return (maxOf(width, height) + power - 1) / power
    }

    @Test
    fun sampleSizesArePowersOfTwoThatBoundTheLongestSide() {
        assertEquals(1, PhotoSampling.sampleSize(PixelSize(2048, 1536), 2048))
        assertEquals(2, PhotoSampling.sampleSize(PixelSize(2049, 10), 2048))
        assertEquals(2, PhotoSampling.sampleSize(PixelSize(4000, 3000), 2048))
        // The case rounding down got wrong: 6144 px asked 3, BitmapFactory used 2 -> 3072 px.
        assertEquals(3072, decodedLongest(6144, 4096, 3))
        assertEquals(4, PhotoSampling.sampleSize(PixelSize(6144, 4096), 2048))
        assertEquals(16, PhotoSampling.sampleSize(PixelSize(8192, 16385), 2048))
        assertEquals(8, PhotoSampling.sampleSize(PixelSize(8192, 16384), 2048))
        for (width in listOf(1, 100, 2047, 2048, 2049, 4095, 4096, 4097, 6144, 9000, 12000, 50000)) {
            for (height in listOf(1, 3000, 8191)) {
                val sample = PhotoSampling.sampleSize(PixelSize(width, height), 2048)
                assertEquals("power of two", 0, sample and (sample - 1))
                val longest = decodedLongest(width, height, sample)
                assertTrue("${width}x$height -> $longest", longest <= 2048)
                // Not smaller than needed: half the sample would not fit.
                if (sample > 1) assertTrue(decodedLongest(width, height, sample / 2) > 2048)
            }
        }
    }

    @Test
    fun targetSizesKeepTheAspectRatio() {
        assertEquals(PixelSize(640, 480), PhotoSampling.targetSize(PixelSize(640, 480), 2048))
        assertEquals(PixelSize(2048, 1536), PhotoSampling.targetSize(PixelSize(4000, 3000), 2048))
        assertEquals(PixelSize(1152, 2048), PhotoSampling.targetSize(PixelSize(3024, 5376), 2048))
        assertEquals(PixelSize(2048, 1), PhotoSampling.targetSize(PixelSize(60000, 2), 2048))
    }

    @Test
    fun declaredSizesThatAreNotImagesAreRefused() {
        for (size in listOf(PixelSize(0, 10), PixelSize(10, -1), PixelSize(-1, -1))) {
            try {
                PhotoSampling.sampleSize(size, 2048)
                fail("accepted $size")
            } catch (expected: ClassifierException) {
                assertTrue(expected.error is ClassifierError.InvalidImage)
            }
        }
    }
}
