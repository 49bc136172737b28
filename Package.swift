// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "amqp-tasks",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "AMQP", targets: ["AMQP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
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
            ]
        ),
        .executableTarget(name: "amqp-demo", dependencies: ["AMQP"]),
        .testTarget(name: "AMQPTests", dependencies: ["AMQP"]),
    ]
)
