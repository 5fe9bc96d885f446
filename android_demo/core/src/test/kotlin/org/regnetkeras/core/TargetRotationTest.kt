package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Test

class TargetRotationTest {
    @Test
    fun followsCameraXsOrientationTable() {
        // developer.android.com/media/camera/camerax/orientation-rotation: 45..134 -> ROTATION_270,
        // 135..224 -> ROTATION_180, 225..314 -> ROTATION_90, otherwise ROTATION_0.
        val expected = mapOf(0 to 0, 44 to 0, 45 to 3, 90 to 3, 134 to 3, 135 to 2, 180 to 2, 224 to 2,
            225 to 1, 270 to 1, 314 to 1, 315 to 0, 359 to 0)
        for ((degrees, rotation) in expected) assertEquals("$degrees degrees", rotation, TargetRotation.of(degrees))
    }

    @Test
    fun aHalfTurnChangesTheRotationWithoutAConfigurationChange() {
        assertEquals(TargetRotation.ROTATION_270, TargetRotation.of(90))
        assertEquals(TargetRotation.ROTATION_90, TargetRotation.of(270))
    }

    @Test
    fun aPhoneLyingFlatKeepsTheCurrentRotation() {
        assertNull(TargetRotation.of(TargetRotation.UNKNOWN_ORIENTATION))
    }
}
