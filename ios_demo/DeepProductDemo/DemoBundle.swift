import DeepProductCore
import Foundation

/// The demo assets written by the bundling command (`bundle/` folder reference in the app):
/// `bundle.json` names the model manifest, the Core ML package, the index and sample photos.
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
        let coreml = try manifest.artefact(format: "coreml", precision: descriptor["coreml_precision"] as? String ?? "fp32")
        let index = try GalleryIndex(contentsOf: root.appendingPathComponent(indexFile))
        try index.requireEmbeddingSpace(manifest.embeddingSpaceId)
        let samples = (descriptor["samples"] as? [String] ?? []).map { root.appendingPathComponent($0) }
        return DemoBundle(root: root, manifest: manifest, modelURL: root.appendingPathComponent(coreml.file),
                          index: index, samples: samples)
    }
}
