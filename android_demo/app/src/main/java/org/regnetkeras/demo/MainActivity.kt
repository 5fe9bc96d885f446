package org.regnetkeras.demo

import android.Manifest
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Bundle
import android.provider.Settings
import android.util.TypedValue
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
import org.regnetkeras.core.Accelerator
import org.regnetkeras.core.ResultSettings
import org.regnetkeras.core.RuntimeChoice
import org.regnetkeras.core.SourceMode
import org.regnetkeras.core.SourceToken
import org.regnetkeras.core.TargetRotation

/**
 * Live camera classification (CameraX ImageAnalysis, newest frame only) or a picked photo, with
 * a bundled model on LiteRT (CompiledModel on the GPU or CPU, with the chosen threads), the
 * number of results and the score threshold the user picks. Every failure (metadata, model,
 * runtime, camera, permission, photo) is shown on screen.
 *
 * The Activity only owns views, the camera binding and the permission dialog; the session in
 * [DemoViewModel] decides what is shown, so a rotation neither reloads the model nor leaves
 * photo mode, and work for a source the user has left never reaches the screen.
 */
class MainActivity : AppCompatActivity() {
    private val viewModel: DemoViewModel by viewModels()

    private lateinit var modelSpinner: Spinner
    private lateinit var acceleratorSpinner: Spinner
    private lateinit var threadsSpinner: Spinner
    private lateinit var resultsSpinner: Spinner
    private lateinit var thresholdSpinner: Spinner
    private lateinit var retryButton: Button
    private lateinit var cameraActionButton: Button
    private lateinit var statusText: TextView
    private lateinit var previewView: PreviewView
    private lateinit var photoView: ImageView
    private lateinit var resultsPanel: View
    private lateinit var topLabelsText: TextView
    private lateinit var timingText: TextView
    private lateinit var orientationListener: OrientationEventListener
    private var statusColor = 0
    private var errorColor = 0

    private var cameraProvider: ProcessCameraProvider? = null
    private var analysis: ImageAnalysis? = null
    /** The camera session the permission dialog or the binding answers for. */
    private var cameraToken: SourceToken? = null
    /** The camera waits for a permission the user may grant in the system settings. */
    private var cameraBlocked = false

    private val requestCameraPermission =
        registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
            viewModel.cameraPermissionPending = false
            // After a recreation under the dialog, the answer is for the camera mode restored then.
            val token = cameraToken ?: viewModel.session.tokenFor(SourceMode.CAMERA) ?: return@registerForActivityResult
            cameraBlocked = !granted
            if (granted) startCamera(token) else showCameraRefused(token)
        }

    private val pickPhoto =
        registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri: Uri? ->
            if (uri == null) viewModel.showNoPhotoChosen() else enterPhotoMode(uri)
        }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        modelSpinner = findViewById(R.id.model_spinner)
        acceleratorSpinner = findViewById(R.id.accelerator_spinner)
        threadsSpinner = findViewById(R.id.threads_spinner)
        resultsSpinner = findViewById(R.id.results_spinner)
        thresholdSpinner = findViewById(R.id.threshold_spinner)
        retryButton = findViewById(R.id.retry_button)
        cameraActionButton = findViewById(R.id.camera_action_button)
        statusText = findViewById(R.id.status_text)
        previewView = findViewById(R.id.preview_view)
        photoView = findViewById(R.id.photo_view)
        resultsPanel = findViewById(R.id.results)
        topLabelsText = findViewById(R.id.top_labels_text)
        timingText = findViewById(R.id.timing_text)
        statusColor = statusText.currentTextColor
        // The theme's error colour (light and dark differ; ThemeContrastTest checks both).
        errorColor = TypedValue().let { value ->
            theme.resolveAttribute(com.google.android.material.R.attr.colorError, value, true)
            value.data
        }

        modelSpinner.adapter = adapter(viewModel.catalog.models.map { it.name })
        acceleratorSpinner.adapter = adapter(listOf(getString(R.string.accelerator_cpu), getString(R.string.accelerator_gpu)))
        threadsSpinner.adapter = adapter(viewModel.threadChoices.map { it.toString() })
        resultsSpinner.adapter = adapter(ResultSettings.MAX_RESULT_CHOICES.map { it.toString() })
        thresholdSpinner.adapter = adapter(ResultSettings.THRESHOLD_CHOICES.map { String.format("%.1f", it) })

        // The widgets show the session's (or the saved) choice before any listener is attached,
        // and keep no saved state of their own (saveEnabled="false" in the layout): nothing
        // restored after onCreate can announce a stale value, and the listener calls that do come
        // (a spinner reports its selection on first layout) repeat the choice, which loads nothing.
        val choice = viewModel.initialChoice()
        if (viewModel.catalog.models.isNotEmpty()) modelSpinner.setSelection(choice.modelIndex, false)
        acceleratorSpinner.setSelection(choice.accelerator.ordinal, false)
        threadsSpinner.setSelection(viewModel.threadChoices.indexOf(choice.threads).coerceAtLeast(0), false)
        val results = viewModel.resultSettings
        resultsSpinner.setSelection(ResultSettings.MAX_RESULT_CHOICES.indexOf(results.maxResults).coerceAtLeast(0), false)
        thresholdSpinner.setSelection(ResultSettings.THRESHOLD_CHOICES.indexOf(results.scoreThreshold).coerceAtLeast(0), false)

        val onRuntimeSelected = onSelected { viewModel.choose(widgetChoice()) }
        modelSpinner.onItemSelectedListener = onRuntimeSelected
        acceleratorSpinner.onItemSelectedListener = onRuntimeSelected
        threadsSpinner.onItemSelectedListener = onRuntimeSelected
        val onResultsSelected = onSelected {
            viewModel.chooseResults(ResultSettings(
                ResultSettings.MAX_RESULT_CHOICES[resultsSpinner.selectedItemPosition.coerceAtLeast(0)],
                ResultSettings.THRESHOLD_CHOICES[thresholdSpinner.selectedItemPosition.coerceAtLeast(0)]))
        }
        resultsSpinner.onItemSelectedListener = onResultsSelected
        thresholdSpinner.onItemSelectedListener = onResultsSelected
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
        // Back from the system settings with the camera allowed: start it without another tap.
        if (cameraBlocked && viewModel.session.mode == SourceMode.CAMERA && cameraAllowed()) enterCameraMode()
    }

    override fun onPause() {
        orientationListener.disable()
        super.onPause()
    }

    private fun adapter(items: List<String>) =
        ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, items)

    private fun onSelected(action: () -> Unit) = object : AdapterView.OnItemSelectedListener {
        override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = action()
        override fun onNothingSelected(parent: AdapterView<*>?) = Unit
    }

    private fun widgetChoice(): RuntimeChoice = RuntimeChoice(
        modelSpinner.selectedItemPosition.coerceAtLeast(0),
        viewModel.threadChoices[threadsSpinner.selectedItemPosition.coerceAtLeast(0)],
        Accelerator.values()[acceleratorSpinner.selectedItemPosition.coerceAtLeast(0)])

    private fun render(state: UiState) {
        statusText.text = state.status
        statusText.setTextColor(if (state.statusIsError) errorColor else statusColor)
        retryButton.visibility = if (state.canRetry) View.VISIBLE else View.GONE
        cameraActionButton.visibility = if (state.cameraAction == CameraAction.NONE) View.GONE else View.VISIBLE
        cameraActionButton.setText(
            if (state.cameraAction == CameraAction.OPEN_SETTINGS) R.string.open_settings_button else R.string.allow_camera_button)
        if (state.cameraAction == CameraAction.OPEN_SETTINGS) {
            cameraActionButton.setOnClickListener { openAppSettings() }
        } else {
            cameraActionButton.setOnClickListener { requestPermission() }
        }
        val photoMode = state.mode == SourceMode.PHOTO
        previewView.visibility = if (photoMode) View.GONE else View.VISIBLE
        photoView.visibility = if (photoMode) View.VISIBLE else View.GONE
        photoView.setImageBitmap(state.photo)
        topLabelsText.text = state.topLabels
        timingText.text = state.timing
        // The panel is one live region: TalkBack reads this summary when it changes.
        resultsPanel.contentDescription = state.spokenResult
    }

    private fun cameraAllowed(): Boolean =
        ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED

    /** Every tap on Camera asks again where Android still lets the app ask; after a refusal for
     * good, only the system settings can grant it, and the status line offers the way there. */
    private fun enterCameraMode() {
        val token = viewModel.enterCameraMode()
        cameraToken = token
        cameraBlocked = !cameraAllowed()
        when {
            cameraAllowed() -> startCamera(token)
            // The dialog is open (the Activity was recreated under it): its answer comes to the
            // launcher registered above.
            viewModel.cameraPermissionPending -> Unit
            // The user refused once: say why the camera is needed, with a button that asks again.
            shouldShowRequestPermissionRationale(Manifest.permission.CAMERA) ->
                viewModel.showCameraError(token, getString(R.string.camera_permission_rationale), CameraAction.ASK_AGAIN)
            // Asked before and no rationale: refused for good ("Don't ask again", or twice on API 30+).
            viewModel.cameraPermissionRequested -> showCameraRefused(token)
            else -> requestPermission()
        }
    }

    private fun requestPermission() {
        viewModel.cameraPermissionRequested = true
        viewModel.cameraPermissionPending = true
        requestCameraPermission.launch(Manifest.permission.CAMERA)
    }

    private fun showCameraRefused(token: SourceToken) {
        if (shouldShowRequestPermissionRationale(Manifest.permission.CAMERA)) {
            viewModel.showCameraError(token, getString(R.string.camera_permission_rationale), CameraAction.ASK_AGAIN)
        } else {
            viewModel.showCameraError(token, getString(R.string.camera_permission_refused), CameraAction.OPEN_SETTINGS)
        }
    }

    private fun openAppSettings() {
        startActivity(Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", packageName, null)))
    }

    private fun enterPhotoMode(uri: Uri) {
        cameraProvider?.unbindAll()
        analysis = null
        // Keeps read access to the photo after the process is killed, so that the restored
        // photo mode can decode it again; a provider that does not offer it is not an error.
        try {
            contentResolver.takePersistableUriPermission(uri, Intent.FLAG_GRANT_READ_URI_PERMISSION)
        } catch (notPersistable: SecurityException) {
        }
        viewModel.classifyPhoto(uri)
    }

    private fun startCamera(token: SourceToken) {
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
                viewModel.showCameraWaiting(token)
            } catch (error: Exception) {
                viewModel.showCameraError(token, getString(R.string.camera_unavailable, error.message ?: error.javaClass.simpleName))
            }
        }, ContextCompat.getMainExecutor(this))
    }
}
