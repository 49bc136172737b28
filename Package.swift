// swift-tools-version:6.0
import Foundation
import PackageDescription

/// Targets that amqp-worker links: FoundationEssentials only, never the full Foundation (its libFoundation.so and
/// ICU are 7.6 MB of an idle worker's RSS; Deploy/check-lean). Without this, Foundation's extension members
/// (String(format:), trimmingCharacters…) would stay usable here through any module that imports Foundation.
let leanSettings: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "amqp-tasks",
    // Linux only: no `platforms` claim, as nothing else builds (CRabbitMQShim uses Linux's eventfd; README "Deploying").
    products: [
        .library(name: "AMQP", targets: ["AMQP"]),
        .library(name: "AMQPTasks", targets: ["AMQPTasks"]),
        .executable(name: "amqp-worker", targets: ["amqp-worker"]),
        .executable(name: "amqp-task", targets: ["amqp-task"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        // Tests only (TOMLDifferentialTests); the library reads TOML with its own parser (Sources/AMQPTasks/Config/TOML).
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .target(name: "CRabbitMQShim", dependencies: ["CRabbitMQ"]),
        .target(
            name: "AMQP",
            dependencies: [
                "CRabbitMQ",
                "CRabbitMQShim",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: leanSettings
        ),
        .target(
            name: "AMQPTasks",
            dependencies: [
                "AMQP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: leanSettings
        ),
        // The demo tasks (demo.add, demo.sleep…): an example task library, not part of AMQPTasks' API.
        .target(name: "AMQPTasksDemo", dependencies: ["AMQPTasks"], swiftSettings: leanSettings),
        .executableTarget(
            name: "amqp-worker",
            dependencies: [
                "AMQPTasks", "AMQPTasksDemo", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: leanSettings
        ),
        .executableTarget(
            name: "amqp-task",
            dependencies: ["AMQPTasks", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "amqp-tasks-bench", dependencies: ["AMQP", "AMQPTasks"], path: "Benchmarks/Swift"),
        .executableTarget(name: "amqp-tasks-example", dependencies: ["AMQPTasks", "AMQPTasksDemo"]),
        // The README's worker run as a service with one middleware (Tests/InteropTests/test_examples.py runs it).
        .executableTarget(
            name: "amqp-tasks-example-worker",
            dependencies: [
                "AMQPTasks", "AMQPTasksDemo", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // The client of the fault tests (Tests/InteropTests): sends tasks while the test breaks things.
        .executableTarget(
            name: "amqp-tasks-fault-client", dependencies: ["AMQP", "AMQPTasks", .product(name: "Logging", package: "swift-log")],
            path: "Tests/FaultClient"),
        // The decoders behind one fuzz-input entry point: the libFuzzer harness and FuzzRegressionTests share it.
        .target(name: "AMQPTasksFuzzing", dependencies: ["AMQP", "AMQPTasks"]),
        // `Deploy/broker ctl` for both test targets.
        .target(name: "BrokerControl", path: "Tests/BrokerControl"),
        .testTarget(name: "AMQPTests", dependencies: ["AMQP", "BrokerControl"]),
        .testTarget(
            name: "AMQPTasksTests",
            dependencies: [
                "AMQPTasks", "AMQPTasksDemo", "AMQPTasksFuzzing", "BrokerControl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                // Only for TOMLDifferentialTests: our TOML reader against toml++ (AMQPTasks links no TOMLKit).
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
    ]
)

// The libFuzzer harness exists only for Tests/Fuzz/run: it calls into libFuzzer, which only a build with
// -sanitize=fuzzer links.
if ProcessInfo.processInfo.environment["AMQP_TASKS_FUZZ"] != nil {
    package.targets += [
        .target(name: "CFuzzDriver", path: "Tests/Fuzz/CFuzzDriver"),
        .executableTarget(
            name: "amqp-tasks-fuzz", dependencies: ["AMQPTasksFuzzing", "CFuzzDriver"], path: "Tests/Fuzz/Harness",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
}
