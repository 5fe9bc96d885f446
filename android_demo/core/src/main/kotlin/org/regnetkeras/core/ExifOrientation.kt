package org.regnetkeras.core

/**
 * EXIF orientation (TIFF tag 274, values 1-8): the transform that turns a photo's stored pixels
 * into the picture as it should be seen, as the EXIF specification (CIPA DC-008) defines it.
 *
 * Each value is one linear map of pixel coordinates, given as the four entries of a 2 x 2 matrix
 * in android.graphics.Matrix's layout: x' = scaleX * x + skewX * y, y' = skewY * x + scaleY * y
 * (y pointing down). Bitmap.createBitmap(source, 0, 0, width, height, matrix, filter) maps the
 * source rectangle through such a matrix and moves the result's bounding box to the origin;
 * [apply] does exactly that on an ARGB array, so the matrices the app hands to Android are the
 * ones tested here against Pillow's ImageOps.exif_transpose. Building the map from androidx's
 * (rotationDegrees, isFlipped) pair instead is what turned 5 and 7 by 180 degrees: that pair
 * means "mirror, then rotate", and composing it the other way round swaps transpose and
 * transverse.
 */
enum class ExifOrientation(
    val tag: Int,
    val scaleX: Int,
    val skewX: Int,
    val skewY: Int,
    val scaleY: Int
) {
    /** Row 0 at the top, column 0 at the left: nothing to do. */
    NORMAL(1, 1, 0, 0, 1),
    /** Row 0 at the top, column 0 at the right. */
    MIRROR_HORIZONTAL(2, -1, 0, 0, 1),
    /** Row 0 at the bottom, column 0 at the right. */
    ROTATE_180(3, -1, 0, 0, -1),
    /** Row 0 at the bottom, column 0 at the left. */
    MIRROR_VERTICAL(4, 1, 0, 0, -1),
    /** Row 0 at the left, column 0 at the top: mirrored about the main diagonal. */
    TRANSPOSE(5, 0, 1, 1, 0),
    /** Row 0 at the right, column 0 at the top: turned 90 degrees clockwise to view. */
    ROTATE_90_CLOCKWISE(6, 0, -1, 1, 0),
    /** Row 0 at the right, column 0 at the bottom: mirrored about the other diagonal. */
    TRANSVERSE(7, 0, -1, -1, 0),
    /** Row 0 at the left, column 0 at the bottom: turned 90 degrees counter-clockwise to view. */
    ROTATE_90_COUNTERCLOCKWISE(8, 0, 1, -1, 0);

    /** Width and height trade places (values 5-8). */
    val swapsSides: Boolean
        get() = scaleX == 0

    /** The nine values of android.graphics.Matrix.setValues (no translation, no perspective). */
    fun matrixValues(): FloatArray = floatArrayOf(
        scaleX.toFloat(), skewX.toFloat(), 0f,
        skewY.toFloat(), scaleY.toFloat(), 0f,
        0f, 0f, 1f)

    /** [argb] (width x height, row by row) seen upright: what Bitmap.createBitmap makes of it
     * with [matrixValues]. */
    fun apply(argb: IntArray, width: Int, height: Int): OrientedPixels {
        if (width <= 0 || height <= 0 || argb.size != width * height) {
            throw IllegalArgumentException("expected $width x $height pixels, got ${argb.size}")
        }
        val outWidth = if (swapsSides) height else width
        val outHeight = if (swapsSides) width else height
        // The source rectangle's corner that the map sends furthest up-left becomes the origin.
        val minX = minOf(0, scaleX * width) + minOf(0, skewX * height)
        val minY = minOf(0, skewY * width) + minOf(0, scaleY * height)
        val out = IntArray(argb.size)
        for (y in 0 until height) {
            for (x in 0 until width) {
                // Pixel centres (x + 0.5, y + 0.5) in doubled coordinates keep the map exact in
                // integers; the destination pixel is the one whose square holds the mapped centre.
                val mappedX = scaleX * (2 * x + 1) + skewX * (2 * y + 1) - 2 * minX
                val mappedY = skewY * (2 * x + 1) + scaleY * (2 * y + 1) - 2 * minY
                out[(mappedY / 2) * outWidth + mappedX / 2] = argb[y * width + x]
            }
        }
        return OrientedPixels(out, outWidth, outHeight)
    }

    companion object {
        /** The orientation a tag value stands for; missing (0) and undefined values read as
         * [NORMAL], as Pillow's exif_transpose and Android's decoders treat them. */
        fun fromTag(tag: Int): ExifOrientation = values().firstOrNull { it.tag == tag } ?: NORMAL
    }
}

/** Pixels after an orientation transform, row by row. */
class OrientedPixels(val argb: IntArray, val width: Int, val height: Int)
