// swift-tools-version:6.0
import PackageDescription

/// One settings array for every Swift target (Swift 6 language mode, strict concurrency).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    // Each file imports the modules whose members it uses (SE-0444).
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The targets every entry passes through (decode, encode, filter, queue, frame, write). Their
/// code is bounds-checked by construction (ByteWriter reserves before writing), so release
/// builds drop the runtime checks there, and only there: BENCHMARKS.md has what it saves.
/// Debug builds, and so the tests, keep every check.
let hotPathSettings = swiftSettings + [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "alstap",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "alstap", targets: ["alstap"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        // C libraries, each behind a small module with a documented shim.
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        .target(name: "CEnvoyProtos", dependencies: ["CProtobufC"], sources: ["generated"],
                cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "CProtobufArena", dependencies: ["CProtobufC"], cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "CLinux"),
        .target(name: "CWireScan", cSettings: [.unsafeFlags(["-O2"])]),

        // Swift libraries, one job each, in data-path order.
        .target(name: "ALSTapSystem", dependencies: ["CLinux"], swiftSettings: swiftSettings),
        .target(name: "ALSTapHTTP2", dependencies: ["CNghttp2"], swiftSettings: hotPathSettings),
        .target(name: "ALSTapHTTP1", swiftSettings: swiftSettings),
        .target(name: "ALSTapALS", dependencies: ["CEnvoyProtos", "CProtobufC", "CProtobufArena", "CWireScan"],
                swiftSettings: hotPathSettings),
        .target(name: "ALSTapOTLP", dependencies: ["ALSTapALS", "CEnvoyProtos", "CProtobufC", "CProtobufArena"],
                swiftSettings: hotPathSettings),
        .target(name: "ALSTapFilter", dependencies: ["ALSTapALS", "ALSTapHTTP1"], swiftSettings: hotPathSettings),
        .target(name: "ALSTapMetrics",
                dependencies: ["ALSTapALS",
                               .product(name: "CoreMetrics", package: "swift-metrics"),
                               .product(name: "Prometheus", package: "swift-prometheus")],
                swiftSettings: swiftSettings),
        .target(name: "ALSTapFormats", dependencies: ["ALSTapALS"], swiftSettings: hotPathSettings),
        .target(name: "ALSTapCore",
                dependencies: ["ALSTapALS", "ALSTapFilter", "ALSTapFormats", "ALSTapMetrics",
                               .product(name: "DequeModule", package: "swift-collections"),
                               .product(name: "HeapModule", package: "swift-collections")],
                swiftSettings: hotPathSettings),
        .target(name: "ALSTapAggregate",
                dependencies: ["ALSTapALS", "ALSTapFilter", "ALSTapFormats", "ALSTapMetrics", "ALSTapCore"],
                swiftSettings: hotPathSettings),
        .target(name: "ALSTapCapture",
                dependencies: ["ALSTapALS", "ALSTapFilter", "ALSTapFormats", "ALSTapMetrics", "ALSTapCore"],
                swiftSettings: hotPathSettings),
        .target(name: "ALSTapServer",
                dependencies: ["ALSTapSystem", "ALSTapHTTP2", "ALSTapHTTP1", "ALSTapALS", "ALSTapFilter",
                               "ALSTapMetrics", "ALSTapFormats", "ALSTapCore", "ALSTapAggregate", "ALSTapOTLP",
                               .product(name: "Logging", package: "swift-log")],
                resources: [.embedInCode("WebUI/index.html"), .embedInCode("WebUI/app.js"), .embedInCode("WebUI/top.js"),
                            .embedInCode("WebUI/export.js"),
                            .embedInCode("WebUI/app.css")],
                swiftSettings: hotPathSettings),
        .executableTarget(name: "alstap",
                          dependencies: ["ALSTapServer", "ALSTapSystem", "ALSTapHTTP1", "ALSTapHTTP2", "ALSTapALS", "ALSTapMetrics",
                                         "ALSTapFilter", "ALSTapCapture", "ALSTapFormats",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: swiftSettings),
        // libFuzzer targets (scripts/fuzz builds them with -DFUZZING); in a normal build each
        // is a replayer of saved inputs.
        .target(name: "FuzzReplay", swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzALS", dependencies: ["ALSTapALS", "FuzzReplay"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzOTLP", dependencies: ["ALSTapOTLP", "ALSTapALS", "ALSTapHTTP1", "FuzzReplay"],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzHTTP1", dependencies: ["ALSTapHTTP1", "FuzzReplay"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzTapQuery", dependencies: ["ALSTapALS", "ALSTapFilter", "ALSTapHTTP1", "ALSTapAggregate",
                                                          "ALSTapFormats", "FuzzReplay"],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzNotice", dependencies: ["ALSTapFormats", "ALSTapALS", "FuzzReplay"],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzHTTP2", dependencies: ["ALSTapHTTP2", "FuzzReplay"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzCapture", dependencies: ["ALSTapCapture", "ALSTapALS", "ALSTapFilter", "ALSTapFormats", "ALSTapHTTP1",
                                                         "FuzzReplay"],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "alstap-microbench",
                          dependencies: ["ALSTapALS", "ALSTapSystem", "ALSTapAggregate", "ALSTapFilter", "ALSTapOTLP"],
                          swiftSettings: swiftSettings),

        // Synthetic batches (entries with chosen facts) for the tests of the logic above the decoder.
        .target(name: "ALSTapTestSupport", dependencies: ["ALSTapALS", "ALSTapCore"], swiftSettings: swiftSettings),

        .testTarget(name: "ALSTapALSTests",
                    dependencies: ["ALSTapALS", "CProtobufArena", "ALSTapFormats",
                                   .product(name: "PropertyBased", package: "swift-property-based")],
                    exclude: ["Fixtures"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapOTLPTests", dependencies: ["ALSTapOTLP", "ALSTapALS", "ALSTapFilter", "ALSTapHTTP1"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapHTTP2Tests", dependencies: ["ALSTapHTTP2", "CNghttp2"], swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapHTTP1Tests", dependencies: ["ALSTapHTTP1"], swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapServerTests", dependencies: ["ALSTapServer", "ALSTapALS", "ALSTapHTTP2", "ALSTapMetrics"], swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapSystemTests", dependencies: ["ALSTapSystem"], swiftSettings: swiftSettings),
        .testTarget(name: "alstapTests", dependencies: ["alstap"], swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapFilterTests",
                    dependencies: ["ALSTapFilter", "ALSTapTestSupport", "ALSTapALS", "ALSTapHTTP1",
                                   .product(name: "PropertyBased", package: "swift-property-based")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapFormatsTests", dependencies: ["ALSTapFormats", "ALSTapALS"], swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapAggregateTests",
                    dependencies: ["ALSTapAggregate", "ALSTapCore", "ALSTapTestSupport", "ALSTapALS", "ALSTapFilter",
                                   "ALSTapFormats", "ALSTapMetrics", "ALSTapHTTP1",
                                   .product(name: "PropertyBased", package: "swift-property-based")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapCaptureTests",
                    dependencies: ["ALSTapCapture", "ALSTapALS", "ALSTapFilter", "ALSTapFormats", "ALSTapHTTP1"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ALSTapCoreTests",
                    dependencies: ["ALSTapCore", "ALSTapTestSupport", "ALSTapALS", "ALSTapFilter", "ALSTapFormats", "ALSTapMetrics",
                                   .product(name: "PropertyBased", package: "swift-property-based")],
                    swiftSettings: swiftSettings),
    ]
)
