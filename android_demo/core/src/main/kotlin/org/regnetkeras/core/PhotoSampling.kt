package org.regnetkeras.core

/** Width and height in pixels. */
data class PixelSize(val width: Int, val height: Int)

/**
 * How much to shrink a photo while decoding so that its longest side is at most a bound, on
 * every Android version.
 *
 * BitmapFactory (the decoder on API 24-27) takes an inSampleSize but uses a power of two, rounded
 * down: asking 3 for a 6144 px photo decodes it at 3072 px, 2.25 times the pixels intended. The
 * power of two is therefore rounded up here. ImageDecoder (API 28+) takes any target size, which
 * [targetSize] gives exactly.
 */
object PhotoSampling {
    /** The smallest power of two that brings [size]'s longest side to [maxSide] or less. */
    fun sampleSize(size: PixelSize, maxSide: Int): Int {
        checkArguments(size, maxSide)
        val longest = maxOf(size.width, size.height)
        var sample = 1
        // A side of n pixels decodes to ceil(n / sample) pixels.
        while ((longest + sample - 1) / sample > maxSide) sample *= 2
        return sample
    }

    /** [size] scaled to fit [maxSide] with its aspect ratio kept (each side at least 1 pixel);
     * [size] itself when it fits already. */
    fun targetSize(size: PixelSize, maxSide: Int): PixelSize {
        checkArguments(size, maxSide)
        val longest = maxOf(size.width, size.height)
        if (longest <= maxSide) return size
        val scale = maxSide.toDouble() / longest
        fun scaled(side: Int): Int = if (side == longest) maxSide else maxOf(1, Math.round(side * scale).toInt())
        return PixelSize(scaled(size.width), scaled(size.height))
    }

    private fun checkArguments(size: PixelSize, maxSide: Int) {
        if (maxSide < 1) throw IllegalArgumentException("maxSide must be positive, not $maxSide")
        if (size.width < 1 || size.height < 1) {
            throw ClassifierException(ClassifierError.InvalidImage(
                "the photo declares ${size.width}x${size.height} pixels"))
        }
    }
}
