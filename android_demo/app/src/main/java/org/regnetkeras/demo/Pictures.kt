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
import org.regnetkeras.core.PhotoSampling
import org.regnetkeras.core.PixelSize

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
     * pixels can be read, and at most [MAX_PHOTO_SIDE] on its longest side on every API level:
     * the size is read first and the decoder shrinks while decoding (the core's
     * [PhotoSampling]), so no full-size bitmap is ever allocated. */
    @Throws(IOException::class)
    fun decodePhoto(resolver: ContentResolver, uri: Uri): Bitmap {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            // ImageDecoder applies the EXIF orientation itself and scales to any target size.
            return ImageDecoder.decodeBitmap(ImageDecoder.createSource(resolver, uri)) { decoder, info, _ ->
                decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
                val target = PhotoSampling.targetSize(PixelSize(info.size.width, info.size.height), MAX_PHOTO_SIDE)
                decoder.setTargetSize(target.width, target.height)
            }
        }
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, bounds) }
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw IOException("not an image")
        val options = BitmapFactory.Options().apply {
            inSampleSize = PhotoSampling.sampleSize(PixelSize(bounds.outWidth, bounds.outHeight), MAX_PHOTO_SIDE)
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
        val upright = Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, matrix, false)
        // The turned copy replaces the decoded one; only one photo-sized bitmap stays alive.
        if (upright !== bitmap) bitmap.recycle()
        return upright
    }
}
