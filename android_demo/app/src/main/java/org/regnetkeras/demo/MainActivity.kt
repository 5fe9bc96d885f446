package org.regnetkeras.demo

import android.Manifest
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Bundle
import android.view.OrientationEventListener
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.ImageView
import android.widget.Spinner
import android.widget.TextView
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.activity.viewModels
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import com.google.android.material.materialswitch.MaterialSwitch
import org.regnetkeras.core.RuntimeChoice
import org.regnetkeras.core.SourceMode
import org.regnetkeras.core.TargetRotation

/**
 * Live camera classification (CameraX ImageAnalysis, newest frame only) or a picked photo, with
 * a bundled model, on the CPU (XNNPACK, chosen thread count) or the GPU delegate. Every failure
 * (metadata, model, runtime, camera, permission, photo) is shown on screen.
 *
 * The Activity only owns views and the camera binding; the model, the choice, the mode, the
 * photo, the result and the status lines live in [DemoViewModel], so a rotation neither reloads
 * the model nor leaves photo mode.
 */
class MainActivity : AppCompatActivity() {
    private val viewModel: DemoViewModel by viewModels()

    private lateinit var modelSpinner: Spinner
    private lateinit var threadsSpinner: Spinner
    private lateinit var gpuSwitch: MaterialSwitch
    private lateinit var retryButton: Button
    private lateinit var statusText: TextView
    private lateinit var previewView: PreviewView
    private lateinit var photoView: ImageView
    private lateinit var topLabelsText: TextView
    private lateinit var timingText: TextView
    private lateinit var orientationListener: OrientationEventListener
    private var statusColor = 0

    private var cameraProvider: ProcessCameraProvider? = null
    private var analysis: ImageAnalysis? = null

    private val requestCameraPermission =
        registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
            viewModel.cameraPermission = CameraPermission.ANSWERED
            if (granted) startCamera() else viewModel.showCameraError(getString(R.string.camera_permission_refused))
        }

    private val pickPhoto =
        registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri: Uri? ->
            if (uri == null) viewModel.showPhotoMessage(getString(R.string.no_photo_chosen)) else enterPhotoMode(uri)
        }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        modelSpinner = findViewById(R.id.model_spinner)
        threadsSpinner = findViewById(R.id.threads_spinner)
        gpuSwitch = findViewById(R.id.gpu_switch)
        retryButton = findViewById(R.id.retry_button)
        statusText = findViewById(R.id.status_text)
        previewView = findViewById(R.id.preview_view)
        photoView = findViewById(R.id.photo_view)
        topLabelsText = findViewById(R.id.top_labels_text)
        timingText = findViewById(R.id.timing_text)
        statusColor = statusText.currentTextColor

        modelSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item,
            viewModel.catalog.models.map { it.name })
        threadsSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item,
            viewModel.threadChoices.map { it.toString() })

        // The widgets show the session's choice before any listener is attached, and keep no
        // saved state of their own (saveEnabled="false" in the layout): nothing restored after
        // onCreate can announce a stale value, and the listener calls that do come (a spinner
        // reports its selection on first layout) repeat the session's choice, which loads nothing.
        val choice = viewModel.session.currentChoice ?: viewModel.defaultChoice()
        if (viewModel.catalog.models.isNotEmpty()) modelSpinner.setSelection(choice.modelIndex, false)
        threadsSpinner.setSelection(viewModel.threadChoices.indexOf(choice.threads).coerceAtLeast(0), false)
        gpuSwitch.isChecked = choice.useGpu

        val onSelected = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) =
                viewModel.choose(widgetChoice())
            override fun onNothingSelected(parent: AdapterView<*>?) = Unit
        }
        modelSpinner.onItemSelectedListener = onSelected
        threadsSpinner.onItemSelectedListener = onSelected
        gpuSwitch.setOnCheckedChangeListener { _, _ -> viewModel.choose(widgetChoice()) }
        retryButton.setOnClickListener { viewModel.retry() }
        findViewById<Button>(R.id.camera_button).setOnClickListener { enterCameraMode() }
        findViewById<Button>(R.id.photo_button).setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }

        // A 180-degree turn recreates nothing, so the analysis target rotation follows the
        // device's physical orientation (CameraX's rotation guide), not only configuration changes.
        orientationListener = object : OrientationEventListener(this) {
            override fun onOrientationChanged(orientation: Int) {
                TargetRotation.of(orientation)?.let { analysis?.targetRotation = it }
            }
        }

        viewModel.uiState.observe(this) { render(it) }
        viewModel.choose(widgetChoice())
        if (viewModel.session.mode == SourceMode.CAMERA) enterCameraMode()
    }

    override fun onResume() {
        super.onResume()
        if (orientationListener.canDetectOrientation()) orientationListener.enable()
        viewModel.onResume()
    }

    override fun onPause() {
        orientationListener.disable()
        super.onPause()
    }

    private fun widgetChoice(): RuntimeChoice = RuntimeChoice(
        modelSpinner.selectedItemPosition.coerceAtLeast(0),
        viewModel.threadChoices[threadsSpinner.selectedItemPosition.coerceAtLeast(0)],
        gpuSwitch.isChecked)

    private fun render(state: UiState) {
        statusText.text = state.status
        statusText.setTextColor(if (state.statusIsError) ContextCompat.getColor(this, R.color.error_text) else statusColor)
        retryButton.visibility = if (state.canRetry) View.VISIBLE else View.GONE
        val photoMode = state.mode == SourceMode.PHOTO
        previewView.visibility = if (photoMode) View.GONE else View.VISIBLE
        photoView.visibility = if (photoMode) View.VISIBLE else View.GONE
        photoView.setImageBitmap(if (photoMode) state.photo else null)
        topLabelsText.text = state.topLabels
        timingText.text = state.timing
    }

    private fun enterCameraMode() {
        viewModel.enterCameraMode()
        when {
            ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED ->
                startCamera()
            // The dialog is open (the Activity was recreated under it): its answer comes to the
            // launcher registered above.
            viewModel.cameraPermission == CameraPermission.PENDING -> Unit
            // Refused already (perhaps before a rotation): say so instead of asking again.
            viewModel.cameraPermission == CameraPermission.ANSWERED ->
                viewModel.showCameraError(getString(R.string.camera_permission_refused))
            else -> {
                viewModel.cameraPermission = CameraPermission.PENDING
                requestCameraPermission.launch(Manifest.permission.CAMERA)
            }
        }
    }

    private fun enterPhotoMode(uri: Uri) {
        cameraProvider?.unbindAll()
        analysis = null
        viewModel.classifyPhoto(uri)
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            try {
                val provider = future.get()
                cameraProvider = provider
                if (viewModel.session.mode != SourceMode.CAMERA) return@addListener
                val preview = Preview.Builder().build()
                preview.setSurfaceProvider(previewView.surfaceProvider)
                // Newest frame only: a slow model skips frames instead of lagging behind; RGBA
                // output so that ImageProxy.toBitmap() needs no YUV conversion of ours.
                val useCase = ImageAnalysis.Builder()
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                    .build()
                useCase.setAnalyzer(viewModel.analysisExecutor) { image -> viewModel.analyze(image) }
                val camera = if (provider.hasCamera(CameraSelector.DEFAULT_BACK_CAMERA)) {
                    CameraSelector.DEFAULT_BACK_CAMERA
                } else {
                    CameraSelector.DEFAULT_FRONT_CAMERA
                }
                provider.unbindAll()
                provider.bindToLifecycle(this, camera, preview, useCase)
                analysis = useCase
                viewModel.showCameraWaiting()
            } catch (error: Exception) {
                viewModel.showCameraError(getString(R.string.camera_unavailable, error.message ?: error.javaClass.simpleName))
            }
        }, ContextCompat.getMainExecutor(this))
    }
}
