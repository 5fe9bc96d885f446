package org.regnetkeras.core

/** Frames per second over the last [window] frames (a sliding window, so the figure follows
 * load changes within a second or two instead of averaging the whole session). */
class FrameRateMeter(private val window: Int = 10) {
    private val timestamps = LongArray(window)
    private var count = 0
    private var next = 0

    init {
        if (window < 2) throw IllegalArgumentException("window must hold at least 2 frames, not $window")
    }

    /** Records a frame at [timestampNanos] (monotonic) and returns the rate; 0 until 2 frames. */
    fun record(timestampNanos: Long): Double {
        timestamps[next] = timestampNanos
        next = (next + 1) % window
        if (count < window) count++
        if (count < 2) return 0.0
        val newest = timestamps[(next - 1 + window) % window]
        val oldest = timestamps[(next - count + window) % window]
        val elapsed = newest - oldest
        return if (elapsed <= 0) 0.0 else (count - 1) * 1e9 / elapsed
    }

    fun reset() {
        count = 0
        next = 0
    }
}
