import DeepProductCore
import PhotosUI
import SwiftUI

/// One screen: pick (or take) a photo, see the top catalogue products with their scores.
struct ContentView: View {
    @EnvironmentObject var model: SearchModel
    @State private var pickerItem: PhotosPickerItem?
    @State private var showCamera = false

    var body: some View {
        NavigationStack {
            List {
                Section {
                    if let photo = model.photo {
                        Image(uiImage: photo).resizable().scaledToFit().frame(maxHeight: 240)
                    }
                    HStack {
                        PhotosPicker("Choose photo", selection: $pickerItem, matching: .images)
                        Spacer()
                        Button("Camera") { showCamera = true }
                            .disabled(!UIImagePickerController.isSourceTypeAvailable(.camera))
                    }
                    if !model.samples.isEmpty {
                        ScrollView(.horizontal) {
                            HStack {
                                ForEach(model.samples, id: \.self) { url in
                                    Button(url.deletingPathExtension().lastPathComponent) {
                                        if let data = try? Data(contentsOf: url) { model.search(imageData: data) }
                                    }
                                    .buttonStyle(.bordered)
                                }
                            }
                        }
                    }
                    Picker("Category", selection: $model.category) {
                        Text("All").tag("")
                        ForEach(model.categories, id: \.self) { Text($0).tag($0) }
                    }
                    .onChange(of: model.category) { _ in model.refilter() }
                    Text(model.status).font(.footnote).foregroundStyle(.secondary)
                }
                Section("Top products") {
                    ForEach(Array(model.results.enumerated()), id: \.offset) { rank, hit in
                        HStack {
                            Text("\(rank + 1).").monospacedDigit()
                            VStack(alignment: .leading) {
                                Text(hit.title)
                                Text(hit.productId).font(.caption).foregroundStyle(.secondary)
                            }
                            Spacer()
                            Text(String(format: "%.3f", hit.score)).monospacedDigit()
                        }
                    }
                }
            }
            .navigationTitle("DeepProduct")
        }
        .onChange(of: pickerItem) { item in
            guard let item = item else { return }
            Task {
                // (`if let x = try? await …` trips the tree-sitter grammar CI checks with; same meaning.)
                let data = try? await item.loadTransferable(type: Data.self)
                if let data = data {
                    model.search(imageData: data)
                }
            }
        }
        .sheet(isPresented: $showCamera) {
            CameraPicker { data in model.search(imageData: data) }
        }
    }
}

/// UIKit camera wrapped for SwiftUI; hands back JPEG bytes (EXIF orientation included).
struct CameraPicker: UIViewControllerRepresentable {
    var onPhoto: (Data) -> Void
    @Environment(\.dismiss) private var dismiss

    func makeUIViewController(context: Context) -> UIImagePickerController {
        let picker = UIImagePickerController()
        picker.sourceType = .camera
        picker.delegate = context.coordinator
        return picker
    }

    func updateUIViewController(_ controller: UIImagePickerController, context: Context) {}

    func makeCoordinator() -> Coordinator { Coordinator(self) }

    final class Coordinator: NSObject, UIImagePickerControllerDelegate, UINavigationControllerDelegate {
        let parent: CameraPicker

        init(_ parent: CameraPicker) { self.parent = parent }

        func imagePickerController(_ picker: UIImagePickerController,
                                   didFinishPickingMediaWithInfo info: [UIImagePickerController.InfoKey: Any]) {
            if let image = info[.originalImage] as? UIImage, let data = image.jpegData(compressionQuality: 0.95) {
                parent.onPhoto(data)
            }
            parent.dismiss()
        }
    }
}
