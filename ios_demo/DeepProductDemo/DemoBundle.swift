import DeepProductCore
import Foundation

/// The demo assets written by the bundling command (`bundle/` folder reference in the app):
/// `bundle.json` names the model manifest, the model files, the index and sample photos.
struct DemoBundle {
    let root: URL
    let manifest: ModelManifest
    let modelURL: URL
    let index: GalleryIndex
    let samples: [URL]

    /// Loads the bundle and refuses a model/index pair from different embedding spaces up front.
    static func load(from root: URL) throws -> DemoBundle {
        let descriptorURL = root.appendingPathComponent("bundle.json")
        guard let descriptor = try JSONSerialization.jsonObject(with: Data(contentsOf: descriptorURL)) as? [String: Any] else {
            throw DeepProductError.invalidManifest("\(descriptorURL.path): not a JSON object")
        }
        let manifestFile = descriptor["manifest"] as? String ?? "manifest.json"
        let indexFile = descriptor["index"] as? String ?? "catalogue.dpindex"
        let manifestURL = root.appendingPathComponent(manifestFile)
        let manifest = try ModelManifest(data: Data(contentsOf: manifestURL), source: manifestURL.path)
        // "models": [{file, format, precision}] as written by dp-search bundle / deepproduct.sdk.bundle
        let models = descriptor["models"] as? [[String: Any]] ?? []
        let listed = models.first { $0["format"] as? String == "coreml" }
        let precision = listed?["precision"] as? String ?? "fp32"
        let modelFile = try listed?["file"] as? String ?? manifest.artefact(format: "coreml", precision: precision).file
        let index = try GalleryIndex(contentsOf: root.appendingPathComponent(indexFile))
        try index.requireEmbeddingSpace(manifest.embeddingSpaceId)
        let sampleFiles = (descriptor["samples"] as? [Any] ?? []).compactMap { entry -> String? in
            (entry as? [String: Any])?["file"] as? String ?? entry as? String
        }
        return DemoBundle(root: root, manifest: manifest, modelURL: root.appendingPathComponent(modelFile),
                          index: index, samples: sampleFiles.map { root.appendingPathComponent($0) })
    }
}
