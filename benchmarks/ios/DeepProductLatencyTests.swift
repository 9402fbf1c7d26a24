// Core ML latency of DeepProduct's exported models, measured with XCTest on an iPhone.
//
// One test per (precision, compute units). The names follow testLatency_<precision>_<units> so
// `dp-bench import-ios` maps each measurement to an artefact (coreml/<precision>) and a runtime
// (coreml/<units>). Each measured iteration is exactly one prediction on a prepared input, after
// one untimed warm-up prediction (the first one compiles the model for the Neural Engine / GPU).
//
// Add the exported .mlpackage files (model_fp16.mlpackage, model_int8.mlpackage, ...) to the test
// target: Xcode compiles them into .mlmodelc inside the test bundle. See benchmarks/ios/README.md.

import CoreML
import CoreVideo
import XCTest

final class DeepProductLatencyTests: XCTestCase {
    /// Timed predictions per test; XCTest prints every value, which gives a real median and p90.
    private let iterations = 50

    private func loadModel(_ name: String, _ units: MLComputeUnits) throws -> MLModel {
        let bundle = Bundle(for: DeepProductLatencyTests.self)
        guard let url = bundle.url(forResource: name, withExtension: "mlmodelc") else {
            throw XCTSkip("\(name).mlpackage is not in the test target")
        }
        let config = MLModelConfiguration()
        config.computeUnits = units
        return try MLModel(contentsOf: url, configuration: config)
    }

    /// A mid-grey image of the model's own input size (latency does not depend on pixel values).
    private func makeInput(for model: MLModel) throws -> MLFeatureProvider {
        guard let entry = model.modelDescription.inputDescriptionsByName.first,
              let constraint = entry.value.imageConstraint else {
            throw XCTSkip("the model has no image input")
        }
        var buffer: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, constraint.pixelsWide, constraint.pixelsHigh,
                                         kCVPixelFormatType_32BGRA, nil, &buffer)
        guard status == kCVReturnSuccess, let pixels = buffer else {
            throw XCTSkip("CVPixelBufferCreate failed (\(status))")
        }
        CVPixelBufferLockBaseAddress(pixels, [])
        memset(CVPixelBufferGetBaseAddress(pixels), 128, CVPixelBufferGetDataSize(pixels))
        CVPixelBufferUnlockBaseAddress(pixels, [])
        return try MLDictionaryFeatureProvider(dictionary: [entry.key: MLFeatureValue(pixelBuffer: pixels)])
    }

    private func measureLatency(_ name: String, _ units: MLComputeUnits) throws {
        let model = try loadModel(name, units)
        let input = try makeInput(for: model)
        _ = try model.prediction(from: input)
        let options = XCTMeasureOptions()
        options.iterationCount = iterations
        measure(metrics: [XCTClockMetric()], options: options) {
            _ = try? model.prediction(from: input)
        }
    }

    func testLatency_fp16_all() throws { try measureLatency("model_fp16", .all) }
    func testLatency_fp16_cpuAndNeuralEngine() throws { try measureLatency("model_fp16", .cpuAndNeuralEngine) }
    func testLatency_fp16_cpuOnly() throws { try measureLatency("model_fp16", .cpuOnly) }
    func testLatency_int8_all() throws { try measureLatency("model_int8", .all) }
    func testLatency_int8_cpuOnly() throws { try measureLatency("model_int8", .cpuOnly) }
    func testLatency_fp32_cpuOnly() throws { try measureLatency("model_fp32", .cpuOnly) }
}
