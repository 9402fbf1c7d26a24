import CoreGraphics
import CoreML
import DeepProductCore
import Foundation
import ImageIO
import Vision

/// Runs the exported Core ML model (image input, RGB, normalisation folded into the graph) with
/// Vision, which scales and crops the photo itself. The crop reproduces the manifest's contract:
/// resize the shorter side to `resize_shorter`, take the centre `input_size` square; i.e. the centre
/// square of side shorter * input_size / resize_shorter, scaled to the model's input size. Vision's
/// resampler differs slightly from ours (docs/preprocessing.md measures the drift).
final class Embedder {
    private let vnModel: VNCoreMLModel
    private let spec: PreprocessingSpec

    init(compiledOrPackageURL url: URL, spec: PreprocessingSpec) throws {
        let compiled = url.pathExtension == "mlmodelc" ? url : try MLModel.compileModel(at: url)
        let config = MLModelConfiguration()
        config.computeUnits = .all
        vnModel = try VNCoreMLModel(for: MLModel(contentsOf: compiled, configuration: config))
        self.spec = spec
    }

    /// The L2-normalised embedding of one photo (EXIF orientation honoured via `orientation`).
    func embed(_ image: CGImage, orientation: CGImagePropertyOrientation) throws -> [Float] {
        let request = VNCoreMLRequest(model: vnModel)
        request.imageCropAndScaleOption = .scaleFill
        request.regionOfInterest = centreCropRegion(image: image, orientation: orientation)
        let handler = VNImageRequestHandler(cgImage: image, orientation: orientation, options: [:])
        try handler.perform([request])
        guard let observation = request.results?.first as? VNCoreMLFeatureValueObservation,
              let array = observation.featureValue.multiArrayValue else {
            throw DeepProductError.invalidImage("the model returned no embedding (expected a MultiArray output)")
        }
        return (0..<array.count).map { array[$0].floatValue }
    }

    /// Normalised rect (Vision's lower-left origin; centred, so the flip does not matter) of the
    /// centre square that the manifest's resize-then-crop keeps, in the upright image.
    private func centreCropRegion(image: CGImage, orientation: CGImagePropertyOrientation) -> CGRect {
        let rotated = [.left, .right, .leftMirrored, .rightMirrored].contains(orientation)
        let width = Double(rotated ? image.height : image.width)
        let height = Double(rotated ? image.width : image.height)
        let side = min(width, height) * Double(spec.inputSize) / Double(spec.resizeShorter)
        let w = side / width
        let h = side / height
        return CGRect(x: (1 - w) / 2, y: (1 - h) / 2, width: w, height: h)
    }
}
