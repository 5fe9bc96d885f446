package org.regnetkeras.core

/** Live camera frames, or one picked photo. */
enum class SourceMode { CAMERA, PHOTO }

/**
 * Stamps one piece of work (a camera frame, a photo's decoding or classification) with the
 * source it belongs to and that source's generation when it started. Work runs on the inference
 * thread while the user switches modes or picks another photo on the UI thread; only work whose
 * token is still current may change the screen.
 */
class SourceToken internal constructor(val source: SourceMode, internal val generation: Long) {
    override fun toString(): String = "SourceToken($source, $generation)"
}

/** What the results area shows: the top classes of the current source's latest picture. */
class ShownResult(
    val source: SourceMode,
    val top: List<ScoredLabel>,
    val preprocessMillis: Double,
    val inferenceMillis: Double,
    /** Median inference time over the current model's recent runs (warm-up excluded). */
    val medianInferenceMillis: Double,
    /** Camera frames per second; 0 for a photo. */
    val framesPerSecond: Double
)
