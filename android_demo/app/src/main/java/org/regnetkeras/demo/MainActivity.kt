package org.regnetkeras.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.net.Uri
import android.os.Bundle
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.ImageView
import android.widget.Spinner
import android.widget.TextView
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import com.google.android.material.materialswitch.MaterialSwitch
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.regnetkeras.core.BundledModels
import org.regnetkeras.core.ClassificationResult
import org.regnetkeras.core.ClassifierError
import org.regnetkeras.core.FrameRateMeter
import org.regnetkeras.core.ModelCatalog
import org.regnetkeras.core.Outcome

/**
 * Live camera classification (CameraX ImageAnalysis, newest frame only) or a picked photo, with
 * a bundled model, on the CPU (XNNPACK, chosen thread count) or the GPU delegate. Every failure
 * (metadata, model, camera, permission, photo) is shown on screen.
 *
 * Threads: the UI thread owns the views; one inference thread owns the classifier, the frame
 * rate meter and the last photo, and runs model loading, frame analysis and photo
 * classification, so that the GPU delegate is always used on the thread that created it.
 */
class MainActivity : AppCompatActivity() {
    private enum class Mode { CAMERA, PHOTO }

    private data class Selection(val modelIndex: Int, val threads: Int, val useGpu: Boolean)

    private lateinit var modelSpinner: Spinner
    private lateinit var threadsSpinner: Spinner
    private lateinit var gpuSwitch: MaterialSwitch
    private lateinit var statusText: TextView
    private lateinit var previewView: PreviewView
    private lateinit var photoView: ImageView
    private lateinit var topLabelsText: TextView
    private lateinit var timingText: TextView
    private var statusColor = 0

    private lateinit var catalog: ModelCatalog
    private lateinit var threadChoices: List<Int>
    private var selection: Selection? = null
    private var cameraProvider: ProcessCameraProvider? = null

    @Volatile
    private var mode = Mode.CAMERA

    private val inference: ExecutorService = Executors.newSingleThreadExecutor()

    // Inference thread only.
    private var loaded: LoadedClassifier? = null
    private val frameRate = FrameRateMeter()
    private var lastPhoto: Bitmap? = null
    private var framePixels: IntArray? = null

    private val requestCameraPermission =
        registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
            if (granted) startCamera() else showError(getString(R.string.camera_permission_refused))
        }

    private val pickPhoto =
        registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri: Uri? ->
            if (uri == null) showStatus(getString(R.string.no_photo_chosen)) else classifyPhoto(uri)
        }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        modelSpinner = findViewById(R.id.model_spinner)
        threadsSpinner = findViewById(R.id.threads_spinner)
        gpuSwitch = findViewById(R.id.gpu_switch)
        statusText = findViewById(R.id.status_text)
        previewView = findViewById(R.id.preview_view)
        photoView = findViewById(R.id.photo_view)
        topLabelsText = findViewById(R.id.top_labels_text)
        timingText = findViewById(R.id.timing_text)
        statusColor = statusText.currentTextColor

        catalog = BundledModels.find(assets.list("")?.toList() ?: emptyList())
        modelSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item,
            catalog.models.map { it.name })
        val cores = Runtime.getRuntime().availableProcessors()
        threadChoices = (listOf(1, 2, 4) + cores).filter { it <= maxOf(cores, 1) }.distinct().sorted()
        threadsSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item,
            threadChoices.map { it.toString() })
        threadsSpinner.setSelection(threadChoices.indexOf(threadChoices.last { it <= 4 }))

        val onSelected = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = reloadClassifier()
            override fun onNothingSelected(parent: AdapterView<*>?) = Unit
        }
        modelSpinner.onItemSelectedListener = onSelected
        threadsSpinner.onItemSelectedListener = onSelected
        gpuSwitch.setOnCheckedChangeListener { _, _ -> reloadClassifier() }
        findViewById<Button>(R.id.camera_button).setOnClickListener { enterCameraMode() }
        findViewById<Button>(R.id.photo_button).setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }

        if (catalog.models.isEmpty()) {
            val problems = catalog.problems.joinToString("\n") { it.message }
            showError(listOf(getString(R.string.no_models), problems).filter { it.isNotEmpty() }.joinToString("\n"))
        } else {
            reloadClassifier()
        }
        enterCameraMode()
    }

    override fun onDestroy() {
        cameraProvider?.unbindAll()
        inference.execute {
            loaded?.classifier?.close()
            loaded = null
        }
        inference.shutdown()
        super.onDestroy()
    }

    /** Loads the selected model with the selected runtime, unless that is what already runs. */
    private fun reloadClassifier() {
        if (catalog.models.isEmpty()) return
        val chosen = Selection(modelSpinner.selectedItemPosition.coerceAtLeast(0),
            threadChoices[threadsSpinner.selectedItemPosition.coerceAtLeast(0)], gpuSwitch.isChecked)
        if (chosen == selection) return
        selection = chosen
        val model = catalog.models[chosen.modelIndex]
        showStatus(getString(R.string.loading_model, model.name))
        inference.execute {
            loaded?.classifier?.close()
            loaded = null
            val outcome = try {
                LiteRtClassifier.load(this, model, RuntimeOptions(chosen.threads, chosen.useGpu))
            } catch (error: RuntimeException) {
                Outcome.Failure(ClassifierError.InferenceFailed(error.message ?: error.toString()))
            }
            when (outcome) {
                is Outcome.Success -> {
                    loaded = outcome.value
                    frameRate.reset()
                    runOnUiThread { showReady(outcome.value, chosen) }
                    if (mode == Mode.PHOTO) lastPhoto?.let { classifyOnInferenceThread(it, live = false) }
                }
                is Outcome.Failure -> runOnUiThread {
                    showError(outcome.error.message)
                    topLabelsText.text = ""
                    timingText.text = ""
                }
            }
        }
    }

    private fun enterCameraMode() {
        mode = Mode.CAMERA
        photoView.visibility = View.GONE
        previewView.visibility = View.VISIBLE
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            requestCameraPermission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            try {
                val provider = future.get()
                cameraProvider = provider
                if (mode != Mode.CAMERA) return@addListener
                val preview = Preview.Builder().build()
                preview.setSurfaceProvider(previewView.surfaceProvider)
                // Newest frame only: a slow model skips frames instead of lagging behind; RGBA
                // output so that ImageProxy.toBitmap() needs no YUV conversion of ours.
                val analysis = ImageAnalysis.Builder()
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                    .build()
                analysis.setAnalyzer(inference) { image -> analyzeFrame(image) }
                val camera = if (provider.hasCamera(CameraSelector.DEFAULT_BACK_CAMERA)) {
                    CameraSelector.DEFAULT_BACK_CAMERA
                } else {
                    CameraSelector.DEFAULT_FRONT_CAMERA
                }
                provider.unbindAll()
                provider.bindToLifecycle(this, camera, preview, analysis)
                showStatusIfIdle(getString(R.string.waiting_for_frames))
            } catch (error: Exception) {
                showError(getString(R.string.camera_unavailable, error.message ?: error.javaClass.simpleName))
            }
        }, ContextCompat.getMainExecutor(this))
    }

    /** Inference thread. */
    private fun analyzeFrame(image: ImageProxy) {
        try {
            if (mode != Mode.CAMERA || loaded == null) return
            classifyOnInferenceThread(Pictures.uprightFrame(image), live = true)
        } finally {
            image.close()
        }
    }

    private fun classifyPhoto(uri: Uri) {
        mode = Mode.PHOTO
        cameraProvider?.unbindAll()
        previewView.visibility = View.GONE
        photoView.visibility = View.VISIBLE
        inference.execute {
            val bitmap = try {
                Pictures.decodePhoto(contentResolver, uri)
            } catch (error: Exception) {
                runOnUiThread { showError(getString(R.string.photo_unreadable, error.message ?: error.javaClass.simpleName)) }
                return@execute
            }
            lastPhoto = bitmap
            runOnUiThread { photoView.setImageBitmap(bitmap) }
            classifyOnInferenceThread(bitmap, live = false)
        }
    }

    /** Inference thread. */
    private fun classifyOnInferenceThread(bitmap: Bitmap, live: Boolean) {
        val classifier = loaded?.classifier ?: return
        val pixels = if (live) {
            Pictures.pixelsOf(bitmap, framePixels).also { framePixels = it.argb }
        } else {
            Pictures.pixelsOf(bitmap)
        }
        val outcome = classifier.classify(pixels.argb, pixels.width, pixels.height)
        val framesPerSecond = if (live) frameRate.record(System.nanoTime()) else 0.0
        runOnUiThread {
            when (outcome) {
                is Outcome.Success -> showResult(outcome.value, live, framesPerSecond)
                is Outcome.Failure -> showError(outcome.error.message)
            }
        }
    }

    private fun showReady(model: LoadedClassifier, chosen: Selection) {
        val metadata = model.classifier.metadata
        val runtime = if (model.onGpu) getString(R.string.gpu_runtime) else getString(R.string.cpu_runtime, chosen.threads)
        val ready = getString(R.string.model_ready, metadata.modelName, metadata.variant, metadata.input.width,
            metadata.input.height, metadata.input.type.jsonName, runtime)
        val reason = model.gpuFallbackReason
        if (reason != null) showError(getString(R.string.gpu_fallback, reason) + "\n" + ready) else showStatus(ready)
    }

    private fun showResult(result: ClassificationResult, live: Boolean, framesPerSecond: Double) {
        topLabelsText.text = result.top.joinToString("\n") { String.format("%-20s %6.2f%%", it.label, it.score * 100) }
        timingText.text = if (live) {
            getString(R.string.timing_camera, result.inferenceMillis, result.preprocessMillis, framesPerSecond)
        } else {
            getString(R.string.timing_photo, result.inferenceMillis, result.preprocessMillis)
        }
        if (statusText.text == getString(R.string.waiting_for_frames)) statusText.text = ""
    }

    private fun showStatusIfIdle(message: String) {
        if (statusText.text.isNullOrEmpty()) showStatus(message)
    }

    private fun showStatus(message: String) {
        statusText.setTextColor(statusColor)
        statusText.text = message
    }

    private fun showError(message: String) {
        statusText.setTextColor(ContextCompat.getColor(this, R.color.error_text))
        statusText.text = message
    }
}
