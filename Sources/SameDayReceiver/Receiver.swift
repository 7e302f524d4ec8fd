import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore

/// The HTTP receiver's settings (`deploy/adapters/receiver.json` is read by `sameday receive`).
public struct ReceiverSettings: Sendable {
    public var registry: UnitSystemRegistry
    /// Larger bodies get 413 without being read further (default 1 MiB).
    public var maxBodyBytes: Int
    /// Events in one request at most (default 1,000).
    public var maxEventsPerRequest: Int
    /// The window of plausible event times; events outside it get 400 naming the field.
    public var eventBounds: EventTimeBounds
    /// The clock the window's upper end is measured from (the wall clock).
    public var now: @Sendable () -> Instant
    /// The units registry and topology, for the routing keys a dry run shows.
    public var configuration: Configuration?
    public var topology: SameDayTopology
    /// Where events go, for `/healthz` and the start-up line (nil in tests).
    public var broker: BrokerTarget?
    /// One structured line per request (default: a JSON line on standard error).
    public var accessLog: @Sendable (AccessRecord) -> Void

    public init(
        registry: UnitSystemRegistry, maxBodyBytes: Int = 1 << 20, maxEventsPerRequest: Int = 1000,
        eventBounds: EventTimeBounds = .standard, now: @escaping @Sendable () -> Instant = wallClockNow,
        configuration: Configuration? = nil, topology: SameDayTopology = SameDayTopology(shards: 4),
        broker: BrokerTarget? = nil,
        accessLog: @escaping @Sendable (AccessRecord) -> Void = AccessRecord.writeToStandardError
    ) {
        self.registry = registry
        self.maxBodyBytes = maxBodyBytes
        self.maxEventsPerRequest = maxEventsPerRequest
        self.eventBounds = eventBounds
        self.now = now
        self.configuration = configuration
        self.topology = topology
        self.broker = broker
        self.accessLog = accessLog
    }
}

/// The broker a receiver publishes to, as an operator needs to see it: host, port, virtual host and user, never
/// the password; and whether it was configured or is the default local broker.
public struct BrokerTarget: Sendable, Equatable, CustomStringConvertible {
    public var hosts: [String]
    public var virtualHost: String
    public var user: String
    /// Where the URL came from: `brokerURLFile <path>`, `SAMEDAY_AMQP_URL`, or nil for the default.
    public var configuredBy: String?

    public init(connection: ConnectionConfiguration, configuredBy: String?) {
        hosts = connection.brokers.map { "\($0.useTLS ? "amqps" : "amqp")://\($0.host):\($0.port)" }
        virtualHost = connection.brokers.first?.virtualHost ?? "/"
        user = connection.brokers.first?.user ?? ""
        self.configuredBy = configuredBy
    }

    public var isDefault: Bool { configuredBy == nil }

    public var description: String {
        "\(hosts.joined(separator: ", ")) vhost \"\(virtualHost)\" as user \"\(user)\" "
            + (configuredBy.map { "(from \($0))" }
                ?? "(DEFAULT local broker: receiver.json has no brokerURLFile and SAMEDAY_AMQP_URL is not set)")
    }
}

/// One line of the access log: what was asked, by which unit system, and what came of it. Never a body, a token
/// or a query string.
public struct AccessRecord: Sendable, Equatable {
    public var method: String
    public var path: String
    public var unitSystem: String?
    public var status: Int
    public var events: Int?
    public var durationMilliseconds: Double

    /// `{"time":…,"log":"access","method":…,"path":…,"unitSystem":…,"status":…,"events":…,"durationMs":…}`
    public var json: String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("time", RFC3339.format(wallClockNow()))
        writer.field("log", "access")
        writer.field("method", method)
        writer.field("path", path)
        if let unitSystem { writer.field("unitSystem", unitSystem) } else { writer.key("unitSystem"); writer.null() }
        writer.field("status", status)
        if let events { writer.field("events", events) }
        writer.key("durationMs")
        writer.raw(String(format: "%.1f", durationMilliseconds))
        writer.endObject()
        return writer.text
    }

    @Sendable public static func writeToStandardError(_ record: AccessRecord) {
        FileHandle.standardError.write(Data((record.json + "\n").utf8))
    }
}

/// The receiver's request context: Hummingbird's core context, plus what a handler learns for the access log
/// (the unit system behind the token, the number of events).
public struct ReceiverRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let access = AccessNotes()

    public init(source: Source) { coreContext = .init(source: source) }
}

final class AccessNotes: @unchecked Sendable {
    private let lock = NSLock()
    private var _unitSystem: String?
    private var _events: Int?
    var unitSystem: String? {
        get { lock.withLock { _unitSystem } }
        set { lock.withLock { _unitSystem = newValue } }
    }
    var events: Int? {
        get { lock.withLock { _events } }
        set { lock.withLock { _events = newValue } }
    }
}

/// Logs every request, whatever its outcome (a 401 or 413 attempt leaves a trace too).
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = ReceiverRequestContext
    let log: @Sendable (AccessRecord) -> Void

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = ContinuousClock.now
        func record(_ status: HTTPResponse.Status) {
            let elapsed = ContinuousClock.now - start
            let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            log(
                AccessRecord(
                    method: request.method.rawValue, path: request.uri.path, unitSystem: context.access.unitSystem,
                    status: status.code, events: context.access.events, durationMilliseconds: ms))
        }
        do {
            let response = try await next(request, context)
            record(response.status)
            return response
        } catch {
            record((error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }
}

/// `POST /v1/events`, `GET /healthz`, `GET /metrics` (deploy/adapters/openapi.yaml).
///
/// - 401: no bearer token, or one that no unit system holds (tokens are compared by SHA-256).
/// - 413: body over `maxBodyBytes`; 400: not JSON, or any event invalid (every error, per event and field: the
///   core's decoder, every personal-data field, the plausible time window, a dossier code of another unit);
///   403: an event for a unit that is not the caller's.
/// - 202: only once every event of the request is confirmed by the broker or fsynced to the spool;
///   503: the spool is full (nothing of the request is lost: the caller keeps it and retries).
/// - `forwarder` nil: a dry run. The same checks, then 200 with the events and routing keys it would publish.
public enum Receiver {
    public static func router(settings: ReceiverSettings, forwarder: EventForwarder?) -> Router<ReceiverRequestContext>
    {
        let router = Router(context: ReceiverRequestContext.self)
        router.add(middleware: AccessLogMiddleware(log: settings.accessLog))
        router.get("/healthz") { _, _ -> Response in
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("status", "ok")
            if let forwarder {
                let status = forwarder.settings.spool.status
                writer.field("broker", forwarder.isSpooling ? "unavailable, spooling" : "ok")
                brokerFields(settings.broker, &writer)
                writer.field("spoolPendingEvents", status.pendingEvents)
                writer.field("spoolPendingBytes", status.pendingBytes)
                writer.field("spoolCapacityBytes", status.capacityBytes)
            } else {
                writer.field(
                    "broker", "not used: dry run (requests are answered with the events, nothing is published)")
                brokerFields(settings.broker, &writer)
            }
            writer.endObject()
            return json(.ok, writer)
        }
        router.get("/metrics") { _, _ -> Response in
            var text = forwarder?.settings.spool.status.metrics ?? ""
            text += "# HELP sameday_receiver_spooling 1 while the broker is unavailable and events go to the spool.\n"
            text +=
                "# TYPE sameday_receiver_spooling gauge\nsameday_receiver_spooling \(forwarder?.isSpooling == true ? 1 : 0)\n"
            if let broker = settings.broker {
                text +=
                    "# HELP sameday_receiver_default_broker 1 when no broker is configured (the default local one is used).\n"
                text +=
                    "# TYPE sameday_receiver_default_broker gauge\nsameday_receiver_default_broker \(broker.isDefault ? 1 : 0)\n"
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/v1/events") { request, context -> Response in
            try await handle(request, context: context, settings: settings, forwarder: forwarder)
        }
        return router
    }

    static func brokerFields(_ broker: BrokerTarget?, _ writer: inout JSONWriter) {
        guard let broker else { return }
        writer.field("brokerConfigured", broker.isDefault ? "no: the default local broker" : "yes")
        writer.field("brokerHosts", broker.hosts.joined(separator: ","))
        writer.field("brokerVhost", broker.virtualHost)
        writer.field("brokerUser", broker.user)
        if let by = broker.configuredBy { writer.field("brokerFrom", by) }
    }

    static func handle(
        _ request: Request, context: ReceiverRequestContext, settings: ReceiverSettings, forwarder: EventForwarder?
    ) async throws -> Response {
        guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer "),
            let system = settings.registry.system(bearerToken: String(authorization.dropFirst(7)))
        else {
            var response = problem(.unauthorized, "a valid bearer token is required (Authorization: Bearer …)")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        context.access.unitSystem = system.name
        if let length = request.headers[.contentLength].flatMap(Int.init), length > settings.maxBodyBytes {
            return problem(.contentTooLarge, "the body is over \(settings.maxBodyBytes) bytes; send smaller batches")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: settings.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return problem(.contentTooLarge, "the body is over \(settings.maxBodyBytes) bytes; send smaller batches")
        }
        let body = Array(buffer.readableBytesView)
        var parsed = EventBatch.parse(body, maxEvents: settings.maxEventsPerRequest)
        context.access.events = parsed.count
        // Checks beyond the schema, on every event that decoded: the time window and the dossier's unit.
        let now = settings.now()
        for (index, event) in parsed.events.enumerated() {
            let at = parsed.single ? nil : parsed.indexes[index]
            if let why = settings.eventBounds.violation(of: event, now: now) {
                parsed.errors.append(EventBatch.Problem(index: at, field: why.field.rawValue, message: "\(why)"))
            }
            if let why = RecordMapper.foreignDossier(
                event.dossier, unit: event.unit, configuration: settings.configuration)
            {
                parsed.errors.append(
                    EventBatch.Problem(index: at, field: "dossier", message: "field \"dossier\": " + why))
            }
        }
        if !parsed.errors.isEmpty {
            parsed.errors.sort { ($0.index ?? -1) < ($1.index ?? -1) }
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("errors")
            writer.beginArray()
            for error in parsed.errors {
                writer.beginObject()
                if let index = error.index { writer.field("index", index) }
                if let field = error.field { writer.field("field", field) }
                writer.field("message", error.message)
                writer.endObject()
            }
            writer.endArray()
            writer.endObject()
            return json(.badRequest, writer)
        }
        let foreign = parsed.events.enumerated().filter { !system.units.contains($0.element.unit) }
        if !foreign.isEmpty {
            let list = foreign.map { "event \($0.offset) (unit \($0.element.unit))" }.joined(separator: ", ")
            return problem(
                .forbidden,
                "unit system \(system.name) may publish only for its own units (\(system.units.sorted().joined(separator: ", "))); refused: \(list)"
            )
        }
        guard let forwarder else { return dryRun(parsed.events, settings: settings) }
        do {
            let result = try await forwarder.forward(parsed.events)
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("accepted", parsed.events.count)
            writer.field("confirmed", result.confirmed)
            writer.field("spooled", result.spooled)
            if result.unroutable > 0 { writer.field("unroutable", result.unroutable) }
            writer.endObject()
            return json(.accepted, writer)
        } catch let error as SpoolError {
            return problem(.serviceUnavailable, "\(error)")
        } catch {
            return problem(.serviceUnavailable, "events not stored, retry later: \(error)")
        }
    }

    /// 200 `{"dryRun": true, "accepted": N, "events": [{"routingKey": …, "event": {…}}]}`: nothing published.
    static func dryRun(_ events: [DossierEvent], settings: ReceiverSettings) -> Response {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("dryRun")
        writer.bool(true)
        writer.field("accepted", events.count)
        writer.key("events")
        writer.beginArray()
        for event in events {
            writer.beginObject()
            if let configuration = settings.configuration {
                let message = EventMessage.make(event, configuration: configuration, topology: settings.topology)
                writer.field("routingKey", message.routingKey)
            }
            writer.key("event")
            writer.raw(event.encoded())
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return json(.ok, writer)
    }

    static func json(_ status: HTTPResponse.Status, _ writer: JSONWriter) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: writer.bytes + [0x0A])))
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("error", message)
        writer.endObject()
        return json(status, writer)
    }
}

/// The body of `POST /v1/events`: one event object, or an array of them. Each element is decoded by the core's
/// strict decoder, so an error names the event's index and the field.
public enum EventBatch {
    public struct Problem: Sendable, Equatable {
        public var index: Int?
        public var field: String?
        public var message: String
    }

    /// What a body holds: the events that decoded (with their index in the request), and every problem.
    public struct Parsed: Sendable {
        public var events: [DossierEvent] = []
        /// `indexes[i]` is the position of `events[i]` in the request's array.
        public var indexes: [Int] = []
        public var errors: [Problem] = []
        /// The body was one event, not an array (problems then carry no index).
        public var single = false
        /// Events in the request (valid or not).
        public var count = 0
    }

    public static func parse(_ body: [UInt8], maxEvents: Int) -> Parsed {
        var out = Parsed()
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        guard let first = body.firstIndex(where: { !isSpace($0) }) else {
            out.errors = [Problem(index: nil, field: nil, message: "empty body: send one event or an array of events")]
            return out
        }
        let elements: [Range<Int>]
        if body[first] == UInt8(ascii: "[") {
            guard let split = splitArray(body, from: first) else {
                out.errors = [Problem(index: nil, field: nil, message: "malformed JSON: the array is not well formed")]
                return out
            }
            elements = split
        } else {
            elements = [first..<body.count]
            out.single = true
        }
        out.count = elements.count
        guard !elements.isEmpty else {
            out.errors = [Problem(index: nil, field: nil, message: "the array holds no event")]
            return out
        }
        guard elements.count <= maxEvents else {
            out.errors = [
                Problem(index: nil, field: nil, message: "\(elements.count) events; at most \(maxEvents) per request")
            ]
            return out
        }
        for (index, range) in elements.enumerated() {
            let bytes = Array(body[range])
            let at = out.single ? nil : index
            do {
                out.events.append(try DossierEvent.decode(bytes: bytes))
                out.indexes.append(index)
            } catch {
                if error.reason == .personalData || error.reason == .unknownField {
                    // The decoder stops at the first such field: name every one, so one fix is enough.
                    let found = DossierEvent.personalDataKeys(bytes)
                    if found?.tooMany == true {
                        out.errors.append(
                            Problem(
                                index: at, field: nil,
                                message: "more than \(DossierEvent.maxKeysNamed) keys: not an event (the schema has 12)"
                            ))
                        continue
                    }
                    let personal = found?.keys ?? []
                    if !personal.isEmpty {
                        for key in personal {
                            out.errors.append(
                                Problem(
                                    index: at, field: key,
                                    message: EventDecodingError(field: key, reason: .personalData).description))
                        }
                        if error.reason == .personalData { continue }
                    }
                }
                out.errors.append(Problem(index: at, field: error.field, message: error.description))
            }
        }
        return out
    }

    /// The byte ranges of the top-level elements of a JSON array, or nil if brackets or strings do not balance.
    static func splitArray(_ b: [UInt8], from start: Int) -> [Range<Int>]? {
        var ranges: [Range<Int>] = []
        var depth = 0
        var inString = false
        var escaped = false
        var elementStart: Int?
        var i = start
        while i < b.count {
            let c = b[i]
            if inString {
                if escaped {
                    escaped = false
                } else if c == 0x5C {
                    escaped = true
                } else if c == 0x22 {
                    inString = false
                }
                i += 1
                continue
            }
            switch c {
            case 0x22:
                inString = true
                if depth == 1 && elementStart == nil { elementStart = i }
            case 0x5B, 0x7B:
                depth += 1
                if depth == 2 && elementStart == nil { elementStart = i }
            case 0x5D, 0x7D:
                depth -= 1
                if depth == 0 {
                    if let s = elementStart { ranges.append(s..<i) }
                    // Only white space may follow the array.
                    guard b[(i + 1)...].allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
                        return nil
                    }
                    return ranges
                }
                if depth < 0 { return nil }
            case 0x2C where depth == 1:
                guard let s = elementStart else { return nil }
                ranges.append(s..<i)
                elementStart = nil
            case 0x20, 0x0A, 0x0D, 0x09:
                break
            default:
                if depth == 1 && elementStart == nil { elementStart = i }
            }
            i += 1
        }
        return nil
    }
}
