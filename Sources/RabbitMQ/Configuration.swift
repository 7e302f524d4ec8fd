/// TLS settings for `amqps://` brokers. Paths are PEM files readable by the process.
public struct TLSConfiguration: Sendable, Equatable {
    /// CA bundle used to verify the broker's certificate.
    public var caCertificatePath: String?
    /// Client certificate and key, for brokers that require mutual TLS (and for the EXTERNAL login mechanism).
    public var clientCertificatePath: String?
    public var clientKeyPath: String?
    /// Verify the broker's certificate chain (default true; turn off only for a local test broker).
    public var verifyPeer: Bool
    /// Verify that the certificate names the host we connect to (default true).
    public var verifyHostname: Bool

    public init(
        caCertificatePath: String? = nil, clientCertificatePath: String? = nil, clientKeyPath: String? = nil,
        verifyPeer: Bool = true, verifyHostname: Bool = true
    ) {
        self.caCertificatePath = caCertificatePath
        self.clientCertificatePath = clientCertificatePath
        self.clientKeyPath = clientKeyPath
        self.verifyPeer = verifyPeer
        self.verifyHostname = verifyHostname
    }
}

/// How a connection is opened and kept alive. Defaults suit a worker or adapter on the broker's own network.
///
/// - `brokers`: one or more broker addresses (a cluster); reconnects try them in turn.
/// - `heartbeat`: seconds between heartbeats (default 30). rabbitmq-c services heartbeats only inside its own calls,
///   so consumers never wait longer than a quarter of this in one call.
/// - `connectTimeout`: TCP/TLS connect plus AMQP handshake limit (default 5 s).
/// - `rpcTimeout`: limit for one synchronous AMQP method (declare, qos, consume …; default 10 s).
/// - `connectionName`: shown in the management UI and `rabbitmqctl list_connections`; say who you are.
/// - `reconnect`: the backoff between reconnect attempts.
public struct ConnectionConfiguration: Sendable, Equatable {
    public var brokers: [BrokerURL]
    public var heartbeat: Int
    public var connectTimeout: Duration
    public var rpcTimeout: Duration
    public var connectionName: String
    public var frameMax: Int
    public var tls: TLSConfiguration
    public var reconnect: Backoff.Policy

    public init(
        brokers: [BrokerURL] = [BrokerURL()], heartbeat: Int = 30, connectTimeout: Duration = .seconds(5),
        rpcTimeout: Duration = .seconds(10), connectionName: String = "sameday", frameMax: Int = 131_072,
        tls: TLSConfiguration = TLSConfiguration(), reconnect: Backoff.Policy = Backoff.Policy()
    ) {
        self.brokers = brokers
        self.heartbeat = heartbeat
        self.connectTimeout = connectTimeout
        self.rpcTimeout = rpcTimeout
        self.connectionName = connectionName
        self.frameMax = frameMax
        self.tls = tls
        self.reconnect = reconnect
    }

    /// A configuration from one or more AMQP URLs (comma-separated URLs are accepted too).
    public init(urls: [String], connectionName: String = "sameday") throws(AMQPError) {
        let parts = urls.flatMap { $0.split(separator: ",").map { String($0).trimmingSpaces } }.filter { !$0.isEmpty }
        guard !parts.isEmpty else {
            throw AMQPError(.invalidURL, "no broker URL given", isRetriable: false)
        }
        var brokers: [BrokerURL] = []
        for part in parts { brokers.append(try BrokerURL(parsing: part)) }
        self.init(brokers: brokers, connectionName: connectionName)
    }

    func validate() throws(AMQPError) {
        guard !brokers.isEmpty else {
            throw AMQPError(.invalidConfiguration, "no broker address configured", isRetriable: false)
        }
        guard (0...3600).contains(heartbeat) else {
            throw AMQPError(.invalidConfiguration, "heartbeat \(heartbeat) s is outside 0…3600", isRetriable: false)
        }
        guard frameMax >= 4096 else {
            throw AMQPError(
                .invalidConfiguration, "frameMax \(frameMax) is below AMQP's minimum 4096", isRetriable: false)
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var view = Substring(self)
        while view.first?.isWhitespace == true { view = view.dropFirst() }
        while view.last?.isWhitespace == true { view = view.dropLast() }
        return String(view)
    }
}

extension Duration {
    /// Whole and fractional seconds as a Double, for arithmetic with the C API's timevals.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
