import SwiftUI

/// Entry point of the iOS demo: one screen (ContentView) over a SearchModel that owns the
/// Core ML model, the gallery index and the last results.
@main
struct DeepProductDemoApp: App {
    @StateObject private var model = SearchModel()

    var body: some Scene {
        WindowGroup {
            ContentView()
                .environmentObject(model)
                .task { await model.load() }
        }
    }
}
