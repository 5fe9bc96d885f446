package org.regnetkeras.core

import java.io.Closeable

/** What the user picked: a bundled model (its index in the catalog), CPU threads, GPU or not. */
data class RuntimeChoice(val modelIndex: Int, val threads: Int, val useGpu: Boolean)

/** Live camera frames, or one picked photo. */
enum class SourceMode { CAMERA, PHOTO }

/** A model load for the inference thread to run; stale once a newer choice or retry exists. */
class LoadTicket internal constructor(val choice: RuntimeChoice, internal val generation: Long)

/**
 * The demo's state that must outlive an Activity (rotation, resizing, dark mode), held by the
 * app's ViewModel: the loaded model and the choice it was loaded for, camera or photo mode, the
 * status lines and the frame-rate meter.
 *
 * - Choosing what is already loaded or loading starts nothing, so widgets that announce their
 *   selection again after the Activity is recreated cause no reload.
 * - A failed load keeps the choice, and [retry] loads it again.
 * - Only the newest ticket installs a model; an older one's model goes back to be closed.
 *
 * The UI thread chooses and the inference thread loads, so every method is synchronized.
 */
class DemoSession<M : Closeable>(frameWindow: Int = 10) {
    private var choice: RuntimeChoice? = null
    private var generation = 0L
    private var loaded: M? = null
    private var failure: ClassifierError? = null
    private val frameRate = FrameRateMeter(frameWindow)

    val status = StatusBoard()

    @Volatile
    var mode: SourceMode = SourceMode.CAMERA

    /** The user's current choice (loaded, loading or failed), null before the first. */
    val currentChoice: RuntimeChoice?
        @Synchronized get() = choice

    /** Why the current choice failed to load, or null. */
    val loadFailure: ClassifierError?
        @Synchronized get() = failure

    /** The model to classify with, or null while none is ready. */
    val model: M?
        @Synchronized get() = loaded

    /** A ticket to load [newChoice], or null when it is the current choice already. */
    @Synchronized
    fun choose(newChoice: RuntimeChoice): LoadTicket? {
        if (newChoice == choice) return null
        choice = newChoice
        return issue(newChoice)
    }

    /** A ticket to load the current choice again after it failed; null when it did not fail. */
    @Synchronized
    fun retry(): LoadTicket? {
        val current = choice ?: return null
        if (failure == null) return null
        return issue(current)
    }

    /** Inference thread: false when a newer ticket exists and this one should be skipped. */
    @Synchronized
    fun isCurrent(ticket: LoadTicket): Boolean = ticket.generation == generation

    /** Inference thread, before loading: detaches the model in use so that the caller closes it
     * first (two models never share memory), or returns null. */
    @Synchronized
    fun detachModel(): M? {
        val previous = loaded
        loaded = null
        return previous
    }

    /** Inference thread: installs [model] and returns true if [ticket] is still current; false
     * means a newer choice arrived while loading, and the caller closes [model]. */
    @Synchronized
    fun finishLoad(ticket: LoadTicket, model: M): Boolean {
        if (!isCurrent(ticket)) return false
        loaded = model
        failure = null
        frameRate.reset()
        return true
    }

    /** Inference thread: records why loading for [ticket] failed; false (and nothing recorded)
     * when the ticket is stale. */
    @Synchronized
    fun failLoad(ticket: LoadTicket, error: ClassifierError): Boolean {
        if (!isCurrent(ticket)) return false
        failure = error
        return true
    }

    /** Inference thread: records a classified camera frame; returns frames per second. */
    @Synchronized
    fun recordFrame(timestampNanos: Long): Double = frameRate.record(timestampNanos)

    /** Starts the frame rate afresh: on resume and on entering camera mode, so that the figure
     * never spans a pause. */
    @Synchronized
    fun resetFrameRate() {
        frameRate.reset()
    }

    /** When the ViewModel is cleared: detaches the model for closing; outstanding tickets go
     * stale. */
    @Synchronized
    fun close(): M? {
        generation++
        choice = null
        failure = null
        return detachModel()
    }

    private fun issue(target: RuntimeChoice): LoadTicket {
        generation++
        failure = null
        return LoadTicket(target, generation)
    }
}
