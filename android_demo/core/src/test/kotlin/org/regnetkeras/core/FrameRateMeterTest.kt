package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Test

class FrameRateMeterTest {
    @Test
    fun ratesTheLastFramesOfTheWindow() {
        val meter = FrameRateMeter(window = 3)
        assertEquals(0.0, meter.record(0L), 0.0)
        assertEquals(10.0, meter.record(100_000_000L), 1e-9)
        assertEquals(10.0, meter.record(200_000_000L), 1e-9)
        // Window of 3: frames at 0.2 s, 0.3 s and 0.7 s -> 2 intervals in 0.5 s.
        meter.record(300_000_000L)
        assertEquals(4.0, meter.record(700_000_000L), 1e-9)
        meter.reset()
        assertEquals(0.0, meter.record(800_000_000L), 0.0)
    }

    @Test(expected = IllegalArgumentException::class)
    fun refusesAWindowTooSmallToMeasure() {
        FrameRateMeter(window = 1)
    }
}
