import DeepProductCore
import Foundation
import ImageIO
import SwiftUI
import UIKit

/// Owns the bundle, the embedder and the last search; everything numerical lives in DeepProductCore.
@MainActor
final class SearchModel: ObservableObject {
    @Published var status = "Loading model and catalogue…"
    @Published var results: [SearchResult] = []
    @Published var photo: UIImage?
    @Published var categories: [String] = []
    @Published var category: String = ""
    @Published var samples: [URL] = []

    private var bundle: DemoBundle?
    private var embedder: Embedder?
    private var lastEmbedding: [Float]?

    func load() async {
        do {
            guard let root = Bundle.main.url(forResource: "bundle", withExtension: nil) else {
                status = "No demo bundle in the app: run the bundling command (README) and rebuild."
                return
            }
            let bundle = try DemoBundle.load(from: root)
            embedder = try Embedder(compiledOrPackageURL: bundle.modelURL, spec: bundle.manifest.preprocessing)
            self.bundle = bundle
            samples = bundle.samples
            categories = Array(Set(bundle.index.items.compactMap { $0["category"] as? String })).sorted()
            status = "\(bundle.index.count) catalogue images · \(bundle.manifest.modelName) (\(bundle.index.storage))"
        } catch {
            status = "Could not load the demo bundle: \(error)"
        }
    }

    func search(imageData: Data) {
        guard let embedder = embedder, let bundle = bundle else { return }
        guard let source = CGImageSourceCreateWithData(imageData as CFData, nil),
              let cgImage = CGImageSourceCreateImageAtIndex(source, 0, nil) else {
            status = "Not a readable image."
            return
        }
        let props = CGImageSourceCopyPropertiesAtIndex(source, 0, nil) as? [CFString: Any]
        let raw = (props?[kCGImagePropertyOrientation] as? UInt32) ?? 1
        let orientation = CGImagePropertyOrientation(rawValue: raw) ?? .up
        photo = UIImage(data: imageData)
        do {
            let started = Date()
            lastEmbedding = try embedder.embed(cgImage, orientation: orientation)
            try runSearch(bundle: bundle)
            status = String(format: "Searched %d images in %.0f ms", bundle.index.count, Date().timeIntervalSince(started) * 1000)
        } catch {
            status = "Search failed: \(error)"
        }
    }

    /// Re-runs the last query with the current category filter.
    func refilter() {
        guard let bundle = bundle else { return }
        try? runSearch(bundle: bundle)
    }

    private func runSearch(bundle: DemoBundle) throws {
        guard let query = lastEmbedding else { return }
        let filter: [String: Any] = category.isEmpty ? [:] : ["category": category]
        results = try bundle.index.searchProducts(query, k: 10, filter: filter)  // distinct products
    }
}
