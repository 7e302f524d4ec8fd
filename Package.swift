// swift-tools-version: 6.1
// SameDay: same-day resolution of administrative-procedure dossiers, measured and enforced over RabbitMQ.
// Dependency arrows point one way: executables → runtime → core and the RabbitMQ wrapper → C
// (docs/architecture.md §3 and §7).
import PackageDescription

let package = Package(
    name: "SameDay",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sameday", targets: ["sameday"]),
        .executable(name: "sameday-bench", targets: ["sameday-bench"]),
        .library(name: "RabbitMQ", targets: ["RabbitMQ"]),
        .library(name: "SameDayCore", targets: ["SameDayCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // rabbitmq-c, Debian's librabbitmq-dev (0.11), with a shim for the variadic login functions.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        // The only Swift module that calls amqp_*. SameDayFiles (Foundation only) names its threads for the OS.
        .target(
            name: "RabbitMQ",
            dependencies: [
                "CRabbitMQ", "SameDayFiles",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // SameDay's names on the broker: exchanges, shard queues, routing keys, the topology and definitions.json.
        .target(
            name: "SameDayBroker",
            dependencies: [
                "RabbitMQ", "SameDayCore", "SameDayFiles", .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Producer adapters: mapping profiles, file publishing with checkpoints, the durable spool, receiver auth.
        .target(name: "SameDayAdapters", dependencies: ["RabbitMQ", "SameDayBroker", "SameDayCore", "SameDayFiles"]),
        // What SameDay keeps in files, read and written in one place: a configuration folder loaded and validated, the
        // daily rollup files (written by workers and replays, read back into a period by `sameday report`) and the
        // alert files (appended by workers, read by the report page).
        .target(name: "SameDayFormats", dependencies: ["SameDayCore", "SameDayFiles"]),
        // Durable writes, one helper for the whole package: checked write/fsync/close, atomic replace, folder fsync;
        // threads named for the operating system.
        .target(name: "SameDayFiles"),
        // The HTTP receiver for unit systems that call out; its own target keeps Hummingbird out of the adapters.
        .target(
            name: "SameDayReceiver",
            dependencies: [
                "SameDayAdapters", "SameDayCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The domain, pure and deterministic: no clock, no I/O beyond decoding what it is handed.
        .target(name: "SameDayCore"),
        // Durable worker state in SQLite: the event log (also the processed-id set), dossiers and their timers, the
        // alert outbox, the worker's clock.
        .target(
            name: "SameDayStore",
            dependencies: ["SameDayCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The shared store: a shard's state in PostgreSQL (postgres-nio), and the lease that lets one worker of
        // several serve a shard, with the fencing epoch every commit checks.
        .target(
            name: "SameDayPostgres",
            dependencies: [
                "SameDayCore", "SameDayStore", "SameDayFiles",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The worker runtime: consume loop, timers, outbox, alert sinks, rollup files, metrics (swift-metrics on a
        // swift-prometheus registry, served with /healthz and /readyz by Hummingbird), the worker as a Service.
        .target(
            name: "SameDayWorker",
            dependencies: [
                "RabbitMQ", "SameDayBroker", "SameDayCore", "SameDayStore", "SameDayPostgres", "SameDayFiles",
                "SameDayFormats", "SameDayNotify", "SameDayBoard",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // The supervisor's HTML report: one self-contained page (Mustache template, inline CSS and SVG) from the
        // daily rollups and the worker's alert files.
        .target(
            name: "SameDayReport",
            dependencies: [
                "SameDayCore", "SameDayFormats",
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        // What supervisors receive: digests of alerts rendered in Vietnamese as e-mail (MIME) and chat messages, and
        // the channels that deliver them: the host's sendmail, HTTP webhooks (AsyncHTTPClient), the retry policy.
        .target(
            name: "SameDayNotify",
            dependencies: [
                "SameDayCore", "SameDayReport", "SameDayFiles", "SameDayStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The supervisors' live board: its view of the dossiers at risk (from alerts alone), the login (bcrypt,
        // sessions, throttling), the page and its event stream, each person scoped to her units.
        .target(
            name: "SameDayBoard",
            dependencies: [
                "SameDayCore", "SameDayReport", "SameDayStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ]
        ),
        .executableTarget(
            name: "sameday",
            dependencies: [
                "RabbitMQ", "SameDayBroker", "SameDayCore", "SameDayWorker", "SameDayAdapters", "SameDayReceiver",
                "SameDayFiles", "SameDayFormats", "SameDayReport", "SameDayNotify", "SameDayStore", "SameDayPostgres",
                "SameDayBoard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "sameday-bench",
            dependencies: [
                "RabbitMQ", "SameDayBroker", "SameDayCore", "SameDayWorker", "SameDayAdapters", "SameDayStore",
                "SameDayPostgres", "SameDayFormats", "SameDayNotify", "SameDayBoard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The same AMQP benchmark written directly against rabbitmq-c, as the yardstick for ours.
        .executableTarget(name: "amqp-reference-bench", dependencies: ["CRabbitMQ"]),
        // What tests share: the local broker's address and helpers.
        .target(name: "SameDayTestKit", dependencies: ["RabbitMQ"]),
        .testTarget(name: "RabbitMQTests", dependencies: ["RabbitMQ", "SameDayTestKit"]),
        .testTarget(
            name: "SameDayWorkerTests",
            dependencies: [
                "SameDayWorker", "SameDayStore", "SameDayPostgres", "SameDayCore", "SameDayBroker", "RabbitMQ",
                "SameDayFiles", "SameDayFormats", "SameDayTestKit", "SameDayNotify", "SameDayBoard",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(name: "SameDayReportTests", dependencies: ["SameDayReport", "SameDayCore", "SameDayFormats"]),
        .testTarget(
            name: "SameDayNotifyTests",
            dependencies: [
                "SameDayNotify", "SameDayCore", "SameDayFormats", "SameDayStore", "SameDayTestKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SameDayBrokerTests", dependencies: ["SameDayBroker", "SameDayCore", "RabbitMQ", "SameDayTestKit"]),
        .testTarget(
            name: "SameDayAdaptersTests",
            dependencies: [
                "SameDayAdapters", "SameDayReceiver", "SameDayBroker", "SameDayCore", "SameDayFiles", "RabbitMQ",
                "SameDayTestKit",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "SameDayBoardTests",
            dependencies: [
                "SameDayBoard", "SameDayCore", "SameDayFormats",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ]
        ),
        .testTarget(name: "SameDayFormatsTests", dependencies: ["SameDayFormats", "SameDayCore"]),
        .testTarget(
            name: "SameDayCoreTests",
            dependencies: [
                "SameDayCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Fixtures")]
        ),
    ]
)
