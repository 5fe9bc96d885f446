package org.regnetkeras.core

import java.io.Closeable

/** What the user picked that needs a model load: a bundled model (its index in the catalog),
 * CPU threads, and the accelerator to try. */
data class RuntimeChoice(val modelIndex: Int, val threads: Int, val accelerator: Accelerator)

/** A model load for the inference thread to run; stale once a newer choice or retry exists. */
class LoadTicket internal constructor(val choice: RuntimeChoice, internal val generation: Long)

/**
 * The demo's state that must outlive an Activity (rotation, resizing, dark mode), held by the
 * app's ViewModel, and the rules for what may change it. The app renders this state; it decides
 * nothing itself.
 *
 * Models:
 * - Choosing what is already loaded or loading starts nothing, so widgets that announce their
 *   selection again after the Activity is recreated cause no reload.
 * - A failed load keeps the choice, and [retry] loads it again.
 * - Only the newest ticket installs a model; an older one's model goes back to be closed.
 *
 * Sources: the camera or one photo is current. Each switch ([enterCamera], [startPhoto]) makes
 * every token handed out before it stale, so a photo still being classified when the user taps
 * Camera (or a frame in flight when a photo is picked) can neither show its labels, its timing
 * nor its error: [deliver], [fail] and [report] drop stale work.
 *
 * The UI thread chooses and switches, the inference thread loads and classifies, so every method
 * is synchronized.
 */
class DemoSession<M : Closeable>(frameWindow: Int = 10, latencyWindow: Int = 20) {
    private var choice: RuntimeChoice? = null
    private var loadGeneration = 0L
    private var loaded: M? = null
    private var failure: ClassifierError? = null
    private val frameRate = FrameRateMeter(frameWindow)
    private val latency = LatencyWindow(latencyWindow)

    private var currentMode = SourceMode.CAMERA
    private var sourceGeneration = 0L
    private var shown: ShownResult? = null

    val status = StatusBoard()

    /** The user's current choice (loaded, loading or failed), null before the first. */
    val currentChoice: RuntimeChoice?
        @Synchronized get() = choice

    /** Why the current choice failed to load, or null. */
    val loadFailure: ClassifierError?
        @Synchronized get() = failure

    /** The model to classify with, or null while none is ready. */
    val model: M?
        @Synchronized get() = loaded

    /** Camera or photo: the source whose results may be shown. */
    val mode: SourceMode
        @Synchronized get() = currentMode

    /** The result on screen, or null (none yet for this source, or cleared by a switch). */
    val shownResult: ShownResult?
        @Synchronized get() = shown

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
    fun isCurrent(ticket: LoadTicket): Boolean = ticket.generation == loadGeneration

    /** Inference thread, before loading: detaches the model in use so that the caller closes it
     * first (two models never share memory), or returns null. The result it produced goes too:
     * its labels and timing described the model being replaced. */
    @Synchronized
    fun detachModel(): M? {
        val previous = loaded
        loaded = null
        shown = null
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
        latency.reset()
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

    /** UI thread: the camera becomes the source. Photo work in flight goes stale, the photo's
     * result and status line go, and the frame rate starts afresh. */
    @Synchronized
    fun enterCamera(): SourceToken = switchTo(SourceMode.CAMERA)

    /** UI thread: a newly picked photo becomes the source; frames in flight and any earlier
     * photo's work go stale. The returned token stamps this photo's decoding and classification. */
    @Synchronized
    fun startPhoto(): SourceToken = switchTo(SourceMode.PHOTO)

    /** A token for new work on [source] (a camera frame, or classifying the photo again after a
     * model load), or null when [source] is not the current one. */
    @Synchronized
    fun tokenFor(source: SourceMode): SourceToken? =
        if (source == currentMode) SourceToken(source, sourceGeneration) else null

    /** Whether work stamped with [token] may still change the screen. */
    @Synchronized
    fun isCurrent(token: SourceToken): Boolean =
        token.source == currentMode && token.generation == sourceGeneration

    /**
     * Inference thread: shows [result] if [token] is current, after recording its inference time
     * (and, for the camera, the frame at [timestampNanos]); clears the source's status line,
     * since a result means its earlier error is over. False, and nothing changed, when stale.
     */
    @Synchronized
    fun deliver(token: SourceToken, result: ClassificationResult, top: List<ScoredLabel>,
                timestampNanos: Long): Boolean {
        if (!isCurrent(token)) return false
        latency.record(result.inferenceMillis)
        val framesPerSecond = if (token.source == SourceMode.CAMERA) frameRate.record(timestampNanos) else 0.0
        shown = ShownResult(token.source, top, result.preprocessMillis, result.inferenceMillis,
            latency.median(), framesPerSecond)
        status.clear(statusSourceOf(token.source))
        return true
    }

    /** Shows [error] on [token]'s source line if the token is current; false when stale. */
    @Synchronized
    fun fail(token: SourceToken, error: ClassifierError): Boolean {
        if (!isCurrent(token)) return false
        status.showError(statusSourceOf(token.source), error.message)
        return true
    }

    /** Shows [message] (or clears the line when null) on [token]'s source line if the token is
     * current; false when stale. */
    @Synchronized
    fun report(token: SourceToken, message: String?): Boolean {
        if (!isCurrent(token)) return false
        val line = statusSourceOf(token.source)
        if (message == null) status.clear(line) else status.show(line, message)
        return true
    }

    /** Runs [block] (the app's own bookkeeping for [token], such as keeping the decoded photo)
     * only while [token] is current, atomically with respect to switches; false when stale. */
    @Synchronized
    fun ifCurrent(token: SourceToken, block: () -> Unit): Boolean {
        if (!isCurrent(token)) return false
        block()
        return true
    }

    /** Starts the frame rate afresh: on resume, so that the figure never spans a pause. */
    @Synchronized
    fun resetFrameRate() {
        frameRate.reset()
    }

    /** When the ViewModel is cleared: detaches the model for closing; outstanding tickets and
     * tokens go stale. */
    @Synchronized
    fun close(): M? {
        loadGeneration++
        sourceGeneration++
        choice = null
        failure = null
        return detachModel()
    }

    private fun switchTo(source: SourceMode): SourceToken {
        currentMode = source
        sourceGeneration++
        shown = null
        frameRate.reset()
        status.clear(statusSourceOf(SourceMode.CAMERA))
        status.clear(statusSourceOf(SourceMode.PHOTO))
        return SourceToken(source, sourceGeneration)
    }

    private fun issue(target: RuntimeChoice): LoadTicket {
        loadGeneration++
        failure = null
        return LoadTicket(target, loadGeneration)
    }

    private fun statusSourceOf(source: SourceMode): StatusSource =
        if (source == SourceMode.CAMERA) StatusSource.CAMERA else StatusSource.PHOTO
}
