package org.regnetkeras.core

/**
 * The median of the last [window] inference times. One run's figure swings with the CPU's
 * frequency and with other apps; the median of recent runs is the figure the official LiteRT
 * benchmarks report, and one slow run (a garbage collection, a thermal step) does not move it.
 */
class LatencyWindow(private val window: Int = 20) {
    private val millis = DoubleArray(window)
    private var count = 0
    private var next = 0

    init {
        if (window < 1) throw IllegalArgumentException("window must hold at least 1 run, not $window")
    }

    val size: Int
        get() = count

    fun record(inferenceMillis: Double) {
        millis[next] = inferenceMillis
        next = (next + 1) % window
        if (count < window) count++
    }

    /** The median of the recorded runs (the mean of the middle two for an even count); 0 before
     * the first run. */
    fun median(): Double {
        if (count == 0) return 0.0
        val sorted = millis.copyOf(count)
        sorted.sort()
        val middle = count / 2
        return if (count % 2 == 1) sorted[middle] else (sorted[middle - 1] + sorted[middle]) / 2
    }

    fun reset() {
        count = 0
        next = 0
    }
}
