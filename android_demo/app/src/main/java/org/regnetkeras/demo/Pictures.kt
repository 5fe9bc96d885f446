package org.regnetkeras.demo

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.ImageDecoder
import android.graphics.Matrix
import android.net.Uri
import android.os.Build
import androidx.camera.core.ImageProxy
import androidx.exifinterface.media.ExifInterface
import java.io.IOException
import org.regnetkeras.core.ExifOrientation

/** Turning camera frames and photos into upright ARGB pixels for the classifier. */
object Pictures {
    /** Photos are decoded at most this large: the model input is far smaller, and a full
     * 50-megapixel decode would not fit in the app's memory. */
    private const val MAX_PHOTO_SIDE = 2048

    class Pixels(val argb: IntArray, val width: Int, val height: Int)

    /** The bitmap's ARGB pixels, row by row; reuses [buffer] when it has the right size (camera
     * frames keep theirs, which spares a large allocation per frame). */
    fun pixelsOf(bitmap: Bitmap, buffer: IntArray? = null): Pixels {
        val size = bitmap.width * bitmap.height
        val argb = if (buffer != null && buffer.size == size) buffer else IntArray(size)
        bitmap.getPixels(argb, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        return Pixels(argb, bitmap.width, bitmap.height)
    }

    /** The frame as the user sees it: the sensor image turned by the frame's rotation, which
     * CameraX computes from the analysis use case's target rotation (kept current by
     * MainActivity's orientation listener). */
    fun uprightFrame(image: ImageProxy): Bitmap {
        val bitmap = image.toBitmap()
        val rotation = image.imageInfo.rotationDegrees
        if (rotation == 0) return bitmap
        val matrix = Matrix().apply { postRotate(rotation.toFloat()) }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, matrix, false)
    }

    /** A picked photo, upright (EXIF orientation applied), in software memory so that its
     * pixels can be read. */
    @Throws(IOException::class)
    fun decodePhoto(resolver: ContentResolver, uri: Uri): Bitmap {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            // ImageDecoder applies the EXIF orientation itself.
            return ImageDecoder.decodeBitmap(ImageDecoder.createSource(resolver, uri)) { decoder, info, _ ->
                decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
                val longest = maxOf(info.size.width, info.size.height)
                if (longest > MAX_PHOTO_SIDE) decoder.setTargetSampleSize((longest + MAX_PHOTO_SIDE - 1) / MAX_PHOTO_SIDE)
            }
        }
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, bounds) }
        val longest = maxOf(bounds.outWidth, bounds.outHeight)
        if (longest <= 0) throw IOException("not an image")
        val options = BitmapFactory.Options().apply {
            inSampleSize = (longest + MAX_PHOTO_SIDE - 1) / MAX_PHOTO_SIDE
            inPreferredConfig = Bitmap.Config.ARGB_8888
        }
        val bitmap = resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw IOException("not an image")
        // BitmapFactory ignores EXIF (API 24-27 take this path). The raw tag goes through the
        // core's matrices, which are tested against Pillow for all eight values; androidx's
        // (rotationDegrees, isFlipped) pair composed as rotate-then-mirror turned 5 and 7 by 180.
        val tag = resolver.openInputStream(uri).use { stream ->
            if (stream == null) ExifInterface.ORIENTATION_NORMAL
            else ExifInterface(stream).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
        }
        val orientation = ExifOrientation.fromTag(tag)
        if (orientation == ExifOrientation.NORMAL) return bitmap
        val matrix = Matrix().apply { setValues(orientation.matrixValues()) }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, matrix, false)
    }
}
