package org.regnetkeras.demo

import android.app.Application
import android.graphics.Bitmap
import android.net.Uri
import androidx.camera.core.ImageProxy
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.LiveData
import androidx.lifecycle.MutableLiveData
import java.util.concurrent.Executor
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.regnetkeras.core.BundledModels
import org.regnetkeras.core.ClassificationResult
import org.regnetkeras.core.ClassifierError
import org.regnetkeras.core.DemoSession
import org.regnetkeras.core.Failures
import org.regnetkeras.core.LoadTicket
import org.regnetkeras.core.ModelCatalog
import org.regnetkeras.core.Outcome
import org.regnetkeras.core.RuntimeChoice
import org.regnetkeras.core.SourceMode
import org.regnetkeras.core.StatusSource
import org.regnetkeras.core.Task

/** Where the camera permission request stands; kept across rotations so that a refusal is not
 * asked again and an open dialog is not asked twice. */
enum class CameraPermission { NOT_ASKED, PENDING, ANSWERED }

/** What the screen shows; MainActivity renders it and holds nothing else. */
data class UiState(
    val status: String,
    val statusIsError: Boolean,
    val canRetry: Boolean,
    val mode: SourceMode,
    val photo: Bitmap?,
    val topLabels: String,
    val timing: String
)

/**
 * Outlives the Activity across configuration changes: the core's [DemoSession] (loaded model,
 * choice, mode, status lines, frame rate), the last photo and result, and the inference thread.
 *
 * One inference thread loads models, analyses camera frames (CameraX calls the analyzer on
 * [analysisExecutor]) and classifies photos, so the GPU delegate is always used on the thread
 * that created it. Everything that runs there is guarded: any Throwable the app can recover from
 * (OutOfMemoryError, UnsatisfiedLinkError from LiteRT's native library) becomes a message via
 * the core's Failures instead of ending the thread and the process.
 */
class DemoViewModel(application: Application) : AndroidViewModel(application) {
    val session = DemoSession<LoadedClassifier>()
    val catalog: ModelCatalog = BundledModels.find(application.assets.list("")?.toList() ?: emptyList())
    val threadChoices: List<Int> = Runtime.getRuntime().availableProcessors().let { cores ->
        (listOf(1, 2, 4) + cores).filter { it <= maxOf(cores, 1) }.distinct().sorted()
    }

    var cameraPermission = CameraPermission.NOT_ASKED

    private val inference: ExecutorService = Executors.newSingleThreadExecutor()
    val analysisExecutor: Executor
        get() = inference

    private val state = MutableLiveData<UiState>()
    val uiState: LiveData<UiState>
        get() = state

    @Volatile private var photo: Bitmap? = null
    @Volatile private var topLabels = ""
    @Volatile private var timing = ""

    // Inference thread only.
    private var framePixels: IntArray? = null

    init {
        if (catalog.models.isEmpty()) {
            val problems = catalog.problems.joinToString("\n") { it.message }
            session.status.showError(StatusSource.MODEL,
                listOf(string(R.string.no_models), problems).filter { it.isNotEmpty() }.joinToString("\n"))
        }
        publish()
    }

    /** The choice the widgets start from before the user has made one. */
    fun defaultChoice(): RuntimeChoice =
        RuntimeChoice(0, threadChoices.last { it <= 4 }, useGpu = false)

    /** UI thread: the widgets' current choice; loads it unless it is what is loaded or loading. */
    fun choose(choice: RuntimeChoice) {
        if (catalog.models.isEmpty()) return
        session.choose(choice)?.let { load(it) }
    }

    /** UI thread: loads the current choice again after it failed. */
    fun retry() {
        session.retry()?.let { load(it) }
    }

    /** UI thread, from onResume: the frame rate must not span the time the app was away. */
    fun onResume() {
        session.resetFrameRate()
    }

    fun enterCameraMode() {
        session.mode = SourceMode.CAMERA
        session.resetFrameRate()
        session.status.clear(StatusSource.PHOTO)
        clearResult()
        publish()
    }

    /** The camera is bound: any earlier camera error is over; the first frame clears this line. */
    fun showCameraWaiting() {
        session.status.show(StatusSource.CAMERA, string(R.string.waiting_for_frames))
        publish()
    }

    fun showCameraError(message: String) {
        session.status.showError(StatusSource.CAMERA, message)
        publish()
    }

    fun showPhotoMessage(message: String) {
        session.status.show(StatusSource.PHOTO, message)
        publish()
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
        // Close the old model first: two models (and GPU delegates) never share memory.
        session.detachModel()?.close()
        clearResult()
        val choice = ticket.choice
        val outcome = LiteRtClassifier.load(getApplication<Application>(), catalog.models[choice.modelIndex],
            RuntimeOptions(choice.threads, choice.useGpu))
        when (outcome) {
            is Outcome.Success -> {
                if (!session.finishLoad(ticket, outcome.value)) {
                    outcome.value.close()
                    return
                }
                session.status.show(StatusSource.MODEL, readyMessage(outcome.value, choice))
                publish()
                if (session.mode == SourceMode.PHOTO) photo?.let { classifyOnInferenceThread(it, live = false) }
            }
            is Outcome.Failure -> {
                if (session.failLoad(ticket, outcome.error)) {
                    session.status.showError(StatusSource.MODEL, outcome.error.message)
                    publish()
                }
            }
        }
    }

    /** Inference thread (CameraX's analyzer). */
    fun analyze(image: ImageProxy) {
        try {
            guarded(Task.CLASSIFYING_FRAME, { error ->
                session.status.showError(StatusSource.CAMERA, error.message)
            }) {
                if (session.mode == SourceMode.CAMERA && session.model != null) {
                    classifyOnInferenceThread(Pictures.uprightFrame(image), live = true)
                }
            }
        } finally {
            image.close()
        }
    }

    /** UI thread: a photo from the picker; decoded and classified on the inference thread. */
    fun classifyPhoto(uri: Uri) {
        session.mode = SourceMode.PHOTO
        session.status.clear(StatusSource.CAMERA)
        clearResult()
        publish()
        inference.execute {
            guarded(Task.READING_PHOTO, { error ->
                session.status.showError(StatusSource.PHOTO, error.message)
            }) {
                photo = null  // let the previous photo go before decoding the next
                val bitmap = Pictures.decodePhoto(getApplication<Application>().contentResolver, uri)
                photo = bitmap
                session.status.clear(StatusSource.PHOTO)
                publish()
                guarded(Task.CLASSIFYING_PHOTO, { error ->
                    session.status.showError(StatusSource.PHOTO, error.message)
                }) { classifyOnInferenceThread(bitmap, live = false) }
            }
        }
    }

    /** Inference thread. */
    private fun classifyOnInferenceThread(bitmap: Bitmap, live: Boolean) {
        val classifier = session.model?.classifier ?: return
        val pixels = if (live) {
            Pictures.pixelsOf(bitmap, framePixels).also { framePixels = it.argb }
        } else {
            Pictures.pixelsOf(bitmap)
        }
        when (val outcome = classifier.classify(pixels.argb, pixels.width, pixels.height)) {
            is Outcome.Success -> {
                val framesPerSecond = if (live) session.recordFrame(System.nanoTime()) else 0.0
                showResult(outcome.value, live, framesPerSecond)
                session.status.clear(if (live) StatusSource.CAMERA else StatusSource.PHOTO)
            }
            is Outcome.Failure -> session.status.showError(
                if (live) StatusSource.CAMERA else StatusSource.PHOTO, outcome.error.message)
        }
        publish()
    }

    private fun showResult(result: ClassificationResult, live: Boolean, framesPerSecond: Double) {
        topLabels = result.top.joinToString("\n") { String.format("%-20s %6.2f%%", it.label, it.score * 100) }
        timing = if (live) {
            string(R.string.timing_camera, result.inferenceMillis, result.preprocessMillis, framesPerSecond)
        } else {
            string(R.string.timing_photo, result.inferenceMillis, result.preprocessMillis)
        }
    }

    private fun clearResult() {
        topLabels = ""
        timing = ""
    }

    private fun readyMessage(model: LoadedClassifier, choice: RuntimeChoice): String {
        val metadata = model.classifier.metadata
        val runtime = if (model.onGpu) string(R.string.gpu_runtime) else string(R.string.cpu_runtime, choice.threads)
        val ready = string(R.string.model_ready, metadata.modelName, metadata.variant, metadata.input.width,
            metadata.input.height, metadata.input.type.jsonName, runtime)
        val reason = model.gpuFallbackReason ?: return ready
        return string(R.string.gpu_fallback, reason) + "\n" + ready
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
        state.postValue(UiState(
            status = session.status.text(),
            statusIsError = session.status.hasError,
            canRetry = session.loadFailure != null,
            mode = session.mode,
            photo = photo,
            topLabels = topLabels,
            timing = timing))
    }

    private fun string(id: Int, vararg arguments: Any): String =
        getApplication<Application>().getString(id, *arguments)

    override fun onCleared() {
        // Closed on the inference thread, where the GPU delegate was created.
        val model = session.close()
        inference.execute { model?.close() }
        inference.shutdown()
    }
}
