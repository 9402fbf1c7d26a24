package com.deepproduct.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Matrix
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
import androidx.camera.core.ImageCapture
import androidx.camera.core.ImageCaptureException
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import androidx.exifinterface.media.ExifInterface
import com.deepproduct.core.SearchResult
import java.util.concurrent.Executors

/**
 * One screen: camera preview (CameraX) or a picked photo -> embedding (LiteRT) -> top products
 * from the gallery index (core). All numerics live in the pure-JVM core tested on Linux.
 */
class MainActivity : AppCompatActivity() {
    private val worker = Executors.newSingleThreadExecutor()
    private var bundle: DemoBundle? = null
    private var embedder: Embedder? = null
    private var lastQuery: FloatArray? = null
    private var category: String? = null
    private lateinit var capture: ImageCapture
    private lateinit var status: TextView
    private lateinit var results: TextView
    private lateinit var photo: ImageView

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) worker.execute { search(decodeUpright(uri)) }
    }
    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else status.text = "Camera permission denied: choose a photo instead."
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        status = findViewById(R.id.status)
        results = findViewById(R.id.results)
        photo = findViewById(R.id.photo)
        findViewById<Button>(R.id.capture).setOnClickListener { takePhoto() }
        findViewById<Button>(R.id.pick).setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
        worker.execute { loadBundle() }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            askCamera.launch(Manifest.permission.CAMERA)
        }
    }

    private fun loadBundle() {
        try {
            val b = DemoBundle.load(assets)
            val e = Embedder(assets, b.tfliteAsset, b.manifest.preprocessing)
            bundle = b
            embedder = e
            val categories = (0 until b.index.size()).mapNotNull { b.index.item(it)["category"] as? String }.distinct().sorted()
            runOnUiThread {
                status.text = "${b.index.size()} catalogue images · ${b.manifest.modelName} (${b.index.storage()})"
                setUpCategories(categories)
            }
        } catch (e: Exception) {
            // Truncated/damaged index, wrong version, model/index mismatch: the core's message says which.
            runOnUiThread { status.text = "Could not load the demo bundle: ${e.message}" }
        }
    }

    private fun setUpCategories(categories: List<String>) {
        val spinner = findViewById<Spinner>(R.id.category)
        val options = listOf(getString(R.string.all_categories)) + categories
        spinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, options)
        spinner.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                category = if (position == 0) null else options[position]
                worker.execute { lastQuery?.let { showResults(runSearch(it), null) } }
            }

            override fun onNothingSelected(parent: AdapterView<*>?) {}
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val preview = Preview.Builder().build().also {
                it.setSurfaceProvider(findViewById<PreviewView>(R.id.preview).surfaceProvider)
            }
            capture = ImageCapture.Builder().setCaptureMode(ImageCapture.CAPTURE_MODE_MINIMIZE_LATENCY).build()
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, capture)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun takePhoto() {
        if (!::capture.isInitialized) return
        capture.takePicture(worker, object : ImageCapture.OnImageCapturedCallback() {
            override fun onCaptureSuccess(image: ImageProxy) {
                val rotation = image.imageInfo.rotationDegrees
                val bitmap = image.toBitmap()
                image.close()
                search(rotate(bitmap, rotation))
            }

            override fun onError(exception: ImageCaptureException) {
                runOnUiThread { status.text = "Capture failed: ${exception.message}" }
            }
        })
    }

    /** Decodes a picked photo as ARGB_8888 and applies its EXIF orientation (like the SDK's exif_transpose). */
    private fun decodeUpright(uri: Uri): Bitmap {
        val options = BitmapFactory.Options().apply { inPreferredConfig = Bitmap.Config.ARGB_8888 }
        val bitmap = contentResolver.openInputStream(uri)!!.use { BitmapFactory.decodeStream(it, null, options)!! }
        val orientation = contentResolver.openInputStream(uri)!!.use {
            ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
        }
        val m = Matrix()
        when (orientation) {
            ExifInterface.ORIENTATION_FLIP_HORIZONTAL -> m.setScale(-1f, 1f)
            ExifInterface.ORIENTATION_ROTATE_180 -> m.setRotate(180f)
            ExifInterface.ORIENTATION_FLIP_VERTICAL -> m.setScale(1f, -1f)
            ExifInterface.ORIENTATION_TRANSPOSE -> { m.setRotate(90f); m.postScale(-1f, 1f) }
            ExifInterface.ORIENTATION_ROTATE_90 -> m.setRotate(90f)
            ExifInterface.ORIENTATION_TRANSVERSE -> { m.setRotate(-90f); m.postScale(-1f, 1f) }
            ExifInterface.ORIENTATION_ROTATE_270 -> m.setRotate(-90f)
            else -> return bitmap
        }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
    }

    private fun rotate(bitmap: Bitmap, degrees: Int): Bitmap {
        if (degrees == 0) return bitmap
        val m = Matrix().apply { setRotate(degrees.toFloat()) }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
    }

    private fun search(bitmap: Bitmap) {
        val e = embedder ?: return
        val started = System.nanoTime()
        val query = e.embed(bitmap.copy(Bitmap.Config.ARGB_8888, false))
        lastQuery = query
        val hits = runSearch(query)
        showResults(hits, bitmap, (System.nanoTime() - started) / 1_000_000)
    }

    private fun runSearch(query: FloatArray): List<SearchResult> {
        val filter: Map<String, Any>? = category?.let { mapOf("category" to it) }
        return bundle!!.index.searchProducts(query, 10, filter) // distinct products, best image each
    }

    private fun showResults(hits: List<SearchResult>, bitmap: Bitmap?, millis: Long? = null) {
        val text = hits.mapIndexed { rank, hit -> "%2d. %-28s %.3f  %s".format(rank + 1, hit.title(), hit.score, hit.productId) }
            .joinToString("\n")
        runOnUiThread {
            if (bitmap != null) {
                photo.setImageBitmap(bitmap)
                photo.visibility = View.VISIBLE
            }
            results.text = text
            if (millis != null) status.text = "Embedded and searched in $millis ms"
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.shutdown()
        embedder?.close()
    }
}
