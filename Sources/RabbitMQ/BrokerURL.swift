/// A broker address in the AMQP URI form: `amqp://user:password@host:port/vhost` or `amqps://…` for TLS.
///
/// Defaults follow the RabbitMQ URI spec: user and password `guest`, port 5672 (5671 for `amqps`), vhost `/`
/// when the path is empty. A vhost `/` is written `%2F` in the path. Percent-escapes are decoded in every part.
///
/// An `amqps://` URL may carry its TLS files as RabbitMQ's URI query parameters, so one URL file holds everything a
/// client needs: `?cacertfile=/etc/sameday/tls/ca.pem&certfile=/etc/sameday/tls/client.pem&keyfile=…/client.key`,
/// and `verify=verify_peer` (the default) or `verify=verify_none` (never in production). They replace the
/// connection configuration's `tls` for this broker.
public struct BrokerURL: Sendable, Equatable, CustomStringConvertible {
    public var useTLS: Bool
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String
    /// TLS settings from the URL's query, if it had any (else the connection configuration's apply).
    public var tls: TLSConfiguration?

    public init(
        host: String = "127.0.0.1", port: Int? = nil, user: String = "guest", password: String = "guest",
        virtualHost: String = "/", useTLS: Bool = false
    ) {
        self.host = host
        self.port = port ?? (useTLS ? 5671 : 5672)
        self.user = user
        self.password = password
        self.virtualHost = virtualHost
        self.useTLS = useTLS
    }

    /// Parses an AMQP URI; the error says which part is wrong. The password never appears in the error.
    public init(parsing text: String) throws(AMQPError) {
        func fail(_ why: String) -> AMQPError {
            AMQPError(.invalidURL, "broker URL \(BrokerURL.redact(text)): \(why)", isRetriable: false)
        }
        var rest = Substring(text)
        var query: Substring? = nil
        // The query starts at the first '?' after the credentials (a password may hold a '?').
        if let mark = rest[(rest.lastIndex(of: "@") ?? rest.startIndex)...].firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if rest.hasPrefix("amqp://") {
            useTLS = false
            rest = rest.dropFirst("amqp://".count)
        } else if rest.hasPrefix("amqps://") {
            useTLS = true
            rest = rest.dropFirst("amqps://".count)
        } else {
            throw fail("must start with amqp:// or amqps://")
        }
        var path: Substring? = nil
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        user = "guest"
        password = "guest"
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                guard let u = BrokerURL.percentDecoded(credentials[..<colon]),
                    let p = BrokerURL.percentDecoded(credentials[credentials.index(after: colon)...])
                else { throw fail("bad percent-escape in the credentials") }
                user = u
                password = p
            } else {
                guard let u = BrokerURL.percentDecoded(credentials) else {
                    throw fail("bad percent-escape in the user name")
                }
                user = u
            }
            if user.isEmpty { throw fail("empty user name before '@'") }
        }
        var hostPart = rest
        var portText: Substring? = nil
        if hostPart.hasPrefix("[") {  // IPv6 literal
            guard let close = hostPart.firstIndex(of: "]") else { throw fail("unterminated '[' in the host") }
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw fail("unexpected text after the IPv6 address")
            }
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portText = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw fail("missing host") }
        host = String(hostPart)
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw fail("port '\(portText)' is not a number from 1 to 65535")
            }
            port = value
        } else {
            port = useTLS ? 5671 : 5672
        }
        if let path, !path.isEmpty {
            if path.contains("/") { throw fail("the vhost must be one path segment (write '/' as %2F)") }
            guard let vhost = BrokerURL.percentDecoded(path) else { throw fail("bad percent-escape in the vhost") }
            virtualHost = vhost
        } else {
            virtualHost = "/"
        }
        tls = nil
        if let query {
            guard useTLS else {
                throw fail("query parameters are supported for amqps:// only (cacertfile, certfile, keyfile, verify)")
            }
            var settings = TLSConfiguration()
            for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0])
                guard parts.count == 2, let value = BrokerURL.percentDecoded(parts[1]), !value.isEmpty else {
                    throw fail("query parameter '\(name)' needs a value")
                }
                switch name {
                case "cacertfile": settings.caCertificatePath = value
                case "certfile": settings.clientCertificatePath = value
                case "keyfile": settings.clientKeyPath = value
                case "verify":
                    switch value {
                    case "verify_peer": settings.verifyPeer = true
                    case "verify_none":
                        settings.verifyPeer = false
                        settings.verifyHostname = false
                    default: throw fail("query parameter verify must be verify_peer or verify_none")
                    }
                default:
                    throw fail(
                        "query parameter '\(name)' is not supported (query parameters: cacertfile, certfile, keyfile, verify)"
                    )
                }
            }
            if (settings.clientCertificatePath == nil) != (settings.clientKeyPath == nil) {
                throw fail("certfile and keyfile go together")
            }
            tls = settings
        }
    }

    /// The URL with the password hidden: safe for logs and errors.
    public var description: String {
        let vhost = virtualHost == "/" ? "%2F" : virtualHost
        return "\(useTLS ? "amqps" : "amqp")://\(user)@\(host):\(port)/\(vhost)"
    }

    /// Whether `text`, one URL or several separated by commas, carries a password (`user:password@host`). A
    /// command line is visible to every local user (`ps`, `/proc`) and kept in shell history, so commands refuse
    /// such a URL there; with no password in the URL RabbitMQ's default, `guest`, applies (loopback only).
    public static func carriesPassword(_ text: String) -> Bool {
        text.split(separator: ",").contains { part in
            var rest = Substring(String(part).trimmingSpaces)
            for scheme in ["amqp://", "amqps://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
            let authority = rest.prefix { $0 != "/" }
            guard let at = authority.lastIndex(of: "@") else { return false }
            return authority[..<at].contains(":")
        }
    }

    static func redact(_ text: String) -> String {
        let scheme = text.hasPrefix("amqps://") ? "amqps://" : text.hasPrefix("amqp://") ? "amqp://" : nil
        guard let scheme else { return "'\(text)'" }
        let rest = text.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" }
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else {
            return "'\(text)'"
        }
        return "'\(scheme)\(rest[..<colon]):***\(rest[at...])'"
    }

    static func percentDecoded(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
