package org.regnetkeras.core

/**
 * The camera's target rotation from the device's physical orientation, as CameraX's rotation
 * guide maps OrientationEventListener degrees to Surface.ROTATION_* values.
 *
 * A configuration change only follows 90-degree turns: turning the phone 180 degrees (landscape
 * to reverse landscape) recreates nothing, so a target rotation set once at bind time goes stale
 * and frames reach the model upside down. The app feeds every orientation event through [of].
 */
object TargetRotation {
    /** OrientationEventListener.ORIENTATION_UNKNOWN: the phone lies flat. */
    const val UNKNOWN_ORIENTATION = -1

    /** Surface.ROTATION_0, ROTATION_90, ROTATION_180, ROTATION_270. */
    const val ROTATION_0 = 0
    const val ROTATION_90 = 1
    const val ROTATION_180 = 2
    const val ROTATION_270 = 3

    /** The Surface rotation for [degrees] (0-359, clockwise from natural), or null when the
     * orientation is unknown and the current rotation should stay. */
    fun of(degrees: Int): Int? {
        if (degrees == UNKNOWN_ORIENTATION) return null
        return when (((degrees % 360) + 360) % 360) {
            in 45..134 -> ROTATION_270
            in 135..224 -> ROTATION_180
            in 225..314 -> ROTATION_90
            else -> ROTATION_0
        }
    }
}
