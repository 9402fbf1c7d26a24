// swift-tools-version:5.7
// Foundation-only core of the iOS demo: index reader, int8 dequantisation, top-K with filters and
// preprocessing, mirroring android_demo/core and web_demo/core. `swift test` runs the XCTest suite
// against ../../tests/vectors (the same files the Python SDK and the JVM/JS cores are tested on).
import PackageDescription

let package = Package(
    name: "DeepProductCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "DeepProductCore", targets: ["DeepProductCore"]),
    ],
    targets: [
        .target(name: "DeepProductCore"),
        .testTarget(name: "DeepProductCoreTests", dependencies: ["DeepProductCore"]),
    ]
)
