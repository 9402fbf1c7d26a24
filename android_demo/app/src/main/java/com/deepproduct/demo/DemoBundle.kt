package com.deepproduct.demo

import android.content.res.AssetManager
import com.deepproduct.core.GalleryIndex
import com.deepproduct.core.Json
import com.deepproduct.core.ModelManifest

/**
 * The demo assets the bundling command writes to `app/src/main/assets/bundle/`: `bundle.json`
 * names the model manifest, the model files, the gallery index and sample photos.
 * Loading refuses a model/index pair from different embedding spaces before any search.
 */
class DemoBundle(val manifest: ModelManifest, val tfliteAsset: String, val index: GalleryIndex, val samples: List<String>) {
    companion object {
        const val ROOT = "bundle"

        fun load(assets: AssetManager): DemoBundle {
            val descriptor = Json.parseObject(assets.open("$ROOT/bundle.json").bufferedReader().use { it.readText() })
            val manifestFile = descriptor["manifest"] as? String ?: "manifest.json"
            val indexFile = descriptor["index"] as? String ?: "catalogue.dpindex"
            // The manifest is checked against the schema the bundle ships (the exporter's own file).
            val schemaFile = descriptor["manifest_schema"] as? String ?: "manifest.schema.json"
            val manifest = ModelManifest.parse(
                // Bytes: the core decodes them strictly (a text reader would turn bad UTF-8 into U+FFFD).
                assets.open("$ROOT/$manifestFile").use { it.readBytes() }, "$ROOT/$manifestFile",
                assets.open("$ROOT/$schemaFile").bufferedReader().use { it.readText() })
            // "models": [{file, format, precision}] as written by dp-search bundle / deepproduct.sdk.bundle
            val model = (descriptor["models"] as? List<*>).orEmpty().filterIsInstance<Map<*, *>>()
                .firstOrNull { it["format"] == "tflite" }
            val precision = model?.get("precision") as? String ?: "fp32"
            val file = model?.get("file") as? String ?: manifest.artefact("tflite", precision).file
            val index = assets.open("$ROOT/$indexFile").use { GalleryIndex.read(it, "$ROOT/$indexFile") }
            index.requireEmbeddingSpace(manifest.embeddingSpaceId)
            val samples = (descriptor["samples"] as? List<*>).orEmpty()
                .mapNotNull { (it as? Map<*, *>)?.get("file") as? String ?: it as? String }.map { "$ROOT/$it" }
            return DemoBundle(manifest, "$ROOT/$file", index, samples)
        }
    }
}
