import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The local PostgreSQL the shared-store tests use: `deploy/postgres/local-postgres.sh start` (scripts/test.sh runs
/// it), or another one named by SAMEDAY_TEST_POSTGRES and SAMEDAY_TEST_POSTGRES_PASSWORD_FILE.
public enum LocalPostgres {
    public static var url: String {
        ProcessInfo.processInfo.environment["SAMEDAY_TEST_POSTGRES"] ?? "postgres://sameday@127.0.0.1:5433/sameday"
    }
    public static var passwordFile: String {
        ProcessInfo.processInfo.environment["SAMEDAY_TEST_POSTGRES_PASSWORD_FILE"] ?? "/tmp/sameday-postgres/password"
    }
}

/// A service some suites cannot run without, found by a quick TCP connect to its address.
public enum LocalService: Sendable, CustomStringConvertible {
    /// RabbitMQ at `LocalBroker.url` (127.0.0.1:5672 unless SAMEDAY_TEST_AMQP_URL says otherwise).
    case rabbitMQ
    /// PostgreSQL at `LocalPostgres.url` (127.0.0.1:5433 unless SAMEDAY_TEST_POSTGRES says otherwise).
    case postgreSQL

    /// Set to 1 (scripts/test.sh, which CI runs, does) and a suite whose service is absent fails instead of skipping.
    public static let requiredVariable = "SAMEDAY_TEST_SERVICES_REQUIRED"

    public static var servicesRequired: Bool { ProcessInfo.processInfo.environment[requiredVariable] == "1" }

    public var address: (host: String, port: Int) {
        switch self {
        case .rabbitMQ:
            let url = LocalBroker.url
            return (url.host, url.port)
        case .postgreSQL:
            let components = URLComponents(string: LocalPostgres.url)
            return (components?.host ?? "127.0.0.1", components?.port ?? 5432)
        }
    }

    public var description: String {
        let (host, port) = address
        switch self {
        case .rabbitMQ: return "RabbitMQ on \(host):\(port)"
        case .postgreSQL: return "PostgreSQL on \(host):\(port)"
        }
    }

    /// Whether something accepts a TCP connection at the service's address within `timeout`.
    public func isReachable(timeout: Duration = .seconds(2)) -> Bool {
        let (host, port) = address
        return tcpConnects(host: host, port: port, timeoutMilliseconds: Int32(timeout.components.seconds * 1000))
    }
}

/// The service a test or suite needs is absent although SAMEDAY_TEST_SERVICES_REQUIRED=1 says it must be there.
public struct ServiceAbsent: Error, CustomStringConvertible {
    public var service: LocalService
    public var description: String {
        "needs \(service), which does not accept connections, and \(LocalService.requiredVariable)=1 makes it mandatory"
    }
}

extension Trait where Self == ConditionTrait {
    /// Skips a suite or test, saying "needs RabbitMQ on 127.0.0.1:5672" (or PostgreSQL), when nothing listens at the
    /// service's address; with SAMEDAY_TEST_SERVICES_REQUIRED=1 the absence is an error and the tests fail instead.
    public static func needs(_ service: LocalService, sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        .enabled(
            Comment(rawValue: "needs \(service) (\(LocalService.requiredVariable)=1 makes it mandatory)"),
            sourceLocation: sourceLocation
        ) {
            if service.isReachable() { return true }
            if LocalService.servicesRequired { throw ServiceAbsent(service: service) }
            return false
        }
    }
}

/// A TCP connect to `host:port`, abandoned after `timeoutMilliseconds`.
private func tcpConnects(host: String, port: Int, timeoutMilliseconds: Int32) -> Bool {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    #else
        hints.ai_socktype = SOCK_STREAM
    #endif
    var found: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else { return false }
    defer { freeaddrinfo(first) }
    var candidate: UnsafeMutablePointer<addrinfo>? = first
    while let address = candidate {
        candidate = address.pointee.ai_next
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard fd >= 0 else { continue }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK)
        if connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return true }
        guard errno == EINPROGRESS else { continue }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) == 1 else { continue }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 { return true }
    }
    return false
}
