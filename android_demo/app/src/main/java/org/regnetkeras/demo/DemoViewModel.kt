package org.regnetkeras.demo

import android.app.Application
import android.graphics.Bitmap
import android.net.Uri
import androidx.camera.core.ImageProxy
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.LiveData
import androidx.lifecycle.MutableLiveData
import androidx.lifecycle.SavedStateHandle
import java.util.concurrent.Executor
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.regnetkeras.core.Accelerator
import org.regnetkeras.core.BundledModels
import org.regnetkeras.core.ClassifierError
import org.regnetkeras.core.DemoSession
import org.regnetkeras.core.Failures
import org.regnetkeras.core.LoadTicket
import org.regnetkeras.core.ModelCatalog
import org.regnetkeras.core.ModelDescription
import org.regnetkeras.core.Outcome
import org.regnetkeras.core.ResultSettings
import org.regnetkeras.core.RuntimeChoice
import org.regnetkeras.core.ShownResult
import org.regnetkeras.core.SourceMode
import org.regnetkeras.core.SourceToken
import org.regnetkeras.core.StatusSource
import org.regnetkeras.core.Task
import org.regnetkeras.core.ThreadChoices

/** What the status area offers next to a camera message. */
enum class CameraAction { NONE, ASK_AGAIN, OPEN_SETTINGS }

/** What the screen shows; MainActivity renders it and holds nothing else. */
data class UiState(
    val status: String,
    val statusIsError: Boolean,
    val canRetry: Boolean,
    val cameraAction: CameraAction,
    val mode: SourceMode,
    val photo: Bitmap?,
    val topLabels: String,
    /** What TalkBack says for the results: label names only for the camera (scores change every
     * frame and would be announced every frame), names and rounded scores for a photo. */
    val spokenResult: String,
    val timing: String
)

/**
 * Outlives the Activity across configuration changes; the mode, the photo's address and the
 * settings also survive the process being killed in the background (SavedStateHandle). It holds
 * the core's [DemoSession], which decides which model is loaded and which source's work may reach
 * the screen; this class runs that work and turns the session into a [UiState].
 *
 * One inference thread loads models, analyses camera frames (CameraX calls the analyzer on
 * [analysisExecutor]) and classifies photos, so the GPU accelerator is always used on the thread
 * that created it. Everything that runs there is guarded: any Throwable the app can recover from
 * (OutOfMemoryError, UnsatisfiedLinkError from LiteRT's native library) becomes a message via
 * the core's Failures instead of ending the thread and the process.
 */
class DemoViewModel(application: Application, private val saved: SavedStateHandle) : AndroidViewModel(application) {
    val session = DemoSession<LoadedClassifier>()
    val catalog: ModelCatalog = BundledModels.find(application.assets.list("")?.toList() ?: emptyList())
    val threadChoices: List<Int> = ThreadChoices.forCores(Runtime.getRuntime().availableProcessors())

    /** The result settings; read on the inference thread, set on the UI thread. */
    @Volatile var resultSettings = ResultSettings(
        saved.get<Int>(KEY_MAX_RESULTS) ?: ResultSettings.DEFAULT_MAX_RESULTS,
        saved.get<Double>(KEY_THRESHOLD) ?: ResultSettings.DEFAULT_THRESHOLD)
        private set

    /** Whether the camera permission was requested before, in this install's saved state: with
     * shouldShowRequestPermissionRationale false it tells "never asked" from "refused for good". */
    var cameraPermissionRequested: Boolean
        get() = saved.get<Boolean>(KEY_PERMISSION_REQUESTED) ?: false
        set(value) = saved.set(KEY_PERMISSION_REQUESTED, value)

    /** Whether the permission dialog is open: an Activity recreated under it must not ask again
     * nor report a refusal before the answer comes. */
    var cameraPermissionPending: Boolean
        get() = saved.get<Boolean>(KEY_PERMISSION_PENDING) ?: false
        set(value) = saved.set(KEY_PERMISSION_PENDING, value)

    private val inference: ExecutorService = Executors.newSingleThreadExecutor()
    val analysisExecutor: Executor
        get() = inference

    private val state = MutableLiveData<UiState>()
    val uiState: LiveData<UiState>
        get() = state

    @Volatile private var photo: Bitmap? = null
    @Volatile private var cameraAction = CameraAction.NONE

    // Inference thread only.
    private var framePixels: IntArray? = null

    init {
        if (catalog.models.isEmpty()) {
            session.status.showError(StatusSource.MODEL, string(R.string.no_models))
        }
        if (catalog.problems.isNotEmpty()) {
            session.status.show(StatusSource.ASSETS, catalog.problems.joinToString("\n") { it.message })
        }
        val photoUri = saved.get<Uri>(KEY_PHOTO_URI)
        if (saved.get<String>(KEY_MODE) == SourceMode.PHOTO.name && photoUri != null) {
            // The process was killed in photo mode: decode the same photo again.
            classifyPhoto(photoUri)
        } else {
            publish()
        }
    }

    /** The choice the widgets start from: the saved one, else the defaults. */
    fun initialChoice(): RuntimeChoice = session.currentChoice ?: RuntimeChoice(
        (saved.get<Int>(KEY_MODEL) ?: 0).coerceIn(0, maxOf(catalog.models.size - 1, 0)),
        saved.get<Int>(KEY_THREADS)?.takeIf { it in threadChoices } ?: ThreadChoices.default(threadChoices),
        if (saved.get<String>(KEY_ACCELERATOR) == Accelerator.GPU.name) Accelerator.GPU else Accelerator.CPU)

    /** UI thread: the widgets' current choice; loads it unless it is what is loaded or loading. */
    fun choose(choice: RuntimeChoice) {
        saved.set(KEY_MODEL, choice.modelIndex)
        saved.set(KEY_THREADS, choice.threads)
        saved.set(KEY_ACCELERATOR, choice.accelerator.name)
        if (catalog.models.isEmpty()) return
        session.choose(choice)?.let { load(it) }
    }

    /** UI thread: how many results and from which score; applies from the next result. */
    fun chooseResults(settings: ResultSettings) {
        resultSettings = settings
        saved.set(KEY_MAX_RESULTS, settings.maxResults)
        saved.set(KEY_THRESHOLD, settings.scoreThreshold)
    }

    /** UI thread: loads the current choice again after it failed. */
    fun retry() {
        session.retry()?.let { load(it) }
    }

    /** UI thread, from onResume: the frame rate must not span the time the app was away. */
    fun onResume() {
        session.resetFrameRate()
    }

    /** UI thread: the camera becomes the source; photo work still running goes stale. Returns
     * the token that camera messages (permission, binding) are shown with. */
    fun enterCameraMode(): SourceToken {
        val token = session.enterCamera()
        saved.set(KEY_MODE, SourceMode.CAMERA.name)
        saved.remove<Uri>(KEY_PHOTO_URI)
        photo = null
        cameraAction = CameraAction.NONE
        publish()
        return token
    }

    /** The camera is bound: the first frame clears this line. */
    fun showCameraWaiting(token: SourceToken) {
        cameraAction = CameraAction.NONE
        if (session.report(token, string(R.string.waiting_for_frames))) publish()
    }

    fun showCameraError(token: SourceToken, message: String, action: CameraAction = CameraAction.NONE) {
        if (session.fail(token, ClassifierError.CameraUnavailable(message))) {
            cameraAction = action
            publish()
        }
    }

    /** UI thread: the picker closed without a photo; said on the current source's line. */
    fun showNoPhotoChosen() {
        val token = session.tokenFor(session.mode) ?: return
        if (session.report(token, string(R.string.no_photo_chosen))) publish()
    }

    private fun load(ticket: LoadTicket) {
        val model = catalog.models[ticket.choice.modelIndex]
        session.status.show(StatusSource.MODEL, string(R.string.loading_model, model.name))
        publish()
        inference.execute {
            guarded(Task.LOADING_MODEL, { error ->
                if (session.failLoad(ticket, error)) session.status.showError(StatusSource.MODEL, error.message)
            }) { loadOnInferenceThread(ticket) }
        }
    }

    private fun loadOnInferenceThread(ticket: LoadTicket) {
        if (!session.isCurrent(ticket)) return  // a newer choice is queued behind this one
        // Close the old model first: two models (and GPU buffers) never share memory.
        session.detachModel()?.close()
        publish()
        val choice = ticket.choice
        val outcome = LiteRtClassifiers.load(getApplication<Application>(), catalog.models[choice.modelIndex], choice)
        val loaded = when (outcome) {
            is Outcome.Success -> outcome.value
            is Outcome.Failure -> {
                if (session.failLoad(ticket, outcome.error)) {
                    session.status.showError(StatusSource.MODEL, outcome.error.message)
                    publish()
                }
                return
            }
        }
        // One warm-up run: the first run allocates and (on the GPU) compiles kernels, and would
        // distort the latency figures. A model that cannot run fails here, not on the first frame.
        val input = loaded.classifier.metadata.input
        val warmUp = loaded.classifier.classify(IntArray(input.width * input.height), input.width, input.height)
        if (warmUp is Outcome.Failure) {
            loaded.close()
            if (session.failLoad(ticket, warmUp.error)) {
                session.status.showError(StatusSource.MODEL, warmUp.error.message)
                publish()
            }
            return
        }
        if (!session.finishLoad(ticket, loaded)) {
            loaded.close()
            return
        }
        session.status.show(StatusSource.MODEL, readyMessage(loaded))
        publish()
        val token = session.tokenFor(SourceMode.PHOTO) ?: return
        photo?.let { classifyOnInferenceThread(it, token) }
    }

    /** Inference thread (CameraX's analyzer). */
    fun analyze(image: ImageProxy) {
        try {
            // Stamped before any work: a switch while this frame is classified makes it stale.
            val token = session.tokenFor(SourceMode.CAMERA) ?: return
            guarded(Task.CLASSIFYING_FRAME, { error -> session.fail(token, error) }) {
                if (session.model != null) classifyOnInferenceThread(Pictures.uprightFrame(image), token)
            }
        } finally {
            image.close()
        }
    }

    /** UI thread: a photo from the picker (or the saved one after the process was killed);
     * decoded and classified on the inference thread under its own token. */
    fun classifyPhoto(uri: Uri) {
        val token = session.startPhoto()
        saved.set(KEY_MODE, SourceMode.PHOTO.name)
        saved.set(KEY_PHOTO_URI, uri)
        photo = null  // let the previous photo go before decoding the next
        cameraAction = CameraAction.NONE
        publish()
        inference.execute {
            guarded(Task.READING_PHOTO, { error -> session.fail(token, error) }) {
                if (!session.isCurrent(token)) return@guarded
                val bitmap = Pictures.decodePhoto(getApplication<Application>().contentResolver, uri)
                if (!session.ifCurrent(token) { photo = bitmap }) return@guarded
                publish()
                guarded(Task.CLASSIFYING_PHOTO, { error -> session.fail(token, error) }) {
                    classifyOnInferenceThread(bitmap, token)
                }
            }
        }
    }

    /** Inference thread: classifies [bitmap] for [token]'s source; the session drops the result
     * or the error if the user switched meanwhile. */
    private fun classifyOnInferenceThread(bitmap: Bitmap, token: SourceToken) {
        val classifier = session.model?.classifier ?: return
        val pixels = if (token.source == SourceMode.CAMERA) {
            Pictures.pixelsOf(bitmap, framePixels).also { framePixels = it.argb }
        } else {
            Pictures.pixelsOf(bitmap)
        }
        when (val outcome = classifier.classify(pixels.argb, pixels.width, pixels.height)) {
            is Outcome.Success -> session.deliver(token, outcome.value,
                resultSettings.select(outcome.value.top), System.nanoTime())
            is Outcome.Failure -> session.fail(token, outcome.error)
        }
        publish()
    }

    private fun readyMessage(model: LoadedClassifier): String {
        val metadata = model.classifier.metadata
        val ready = string(R.string.model_ready, metadata.modelName, metadata.variant,
            ModelDescription.describe(metadata), model.engine.description)
        val reason = model.fallbackReason ?: return ready
        return reason + "\n" + ready
    }

    /** Runs [block]; a recoverable Throwable becomes [onFailure]'s error, shown on screen. */
    private inline fun guarded(task: Task, onFailure: (ClassifierError) -> Unit, block: () -> Unit) {
        try {
            block()
        } catch (error: Throwable) {
            if (!Failures.isRecoverable(error)) throw error
            onFailure(Failures.describe(error, task))
            publish()
        }
    }

    @Synchronized
    private fun publish() {
        val shown = session.shownResult
        val mode = session.mode
        state.postValue(UiState(
            status = session.status.text(),
            statusIsError = session.status.hasError,
            canRetry = session.loadFailure != null,
            cameraAction = if (mode == SourceMode.CAMERA) cameraAction else CameraAction.NONE,
            mode = mode,
            photo = if (mode == SourceMode.PHOTO) photo else null,
            topLabels = shown?.top?.joinToString("\n") { String.format("%-20s %6.2f%%", it.label, it.score * 100) } ?: "",
            spokenResult = shown?.let { spoken(it) } ?: "",
            timing = shown?.let { timing(it) } ?: ""))
    }

    private fun spoken(shown: ShownResult): String =
        if (shown.source == SourceMode.CAMERA) shown.top.joinToString(", ") { it.label }
        else shown.top.joinToString(", ") { string(R.string.spoken_label, it.label, Math.round(it.score * 100).toInt()) }

    private fun timing(shown: ShownResult): String =
        if (shown.source == SourceMode.CAMERA) {
            string(R.string.timing_camera, shown.inferenceMillis, shown.medianInferenceMillis,
                shown.preprocessMillis, shown.framesPerSecond)
        } else {
            string(R.string.timing_photo, shown.inferenceMillis, shown.medianInferenceMillis, shown.preprocessMillis)
        }

    private fun string(id: Int, vararg arguments: Any): String =
        getApplication<Application>().getString(id, *arguments)

    override fun onCleared() {
        // Closed on the inference thread, where the GPU accelerator was used.
        val model = session.close()
        inference.execute { model?.close() }
        inference.shutdown()
    }

    private companion object {
        const val KEY_MODE = "mode"
        const val KEY_PHOTO_URI = "photo_uri"
        const val KEY_MODEL = "model"
        const val KEY_THREADS = "threads"
        const val KEY_ACCELERATOR = "accelerator"
        const val KEY_MAX_RESULTS = "max_results"
        const val KEY_THRESHOLD = "score_threshold"
        const val KEY_PERMISSION_REQUESTED = "camera_permission_requested"
        const val KEY_PERMISSION_PENDING = "camera_permission_pending"
    }
}
