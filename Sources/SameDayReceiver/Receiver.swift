import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SameDayAdapters
import SameDayCore

/// The HTTP receiver's settings (`deploy/adapters/receiver.json` is read by `sameday receive`).
public struct ReceiverSettings: Sendable {
    public var registry: UnitSystemRegistry
    /// Larger bodies get 413 without being read further (default 1 MiB).
    public var maxBodyBytes: Int
    /// Events in one request at most (default 1,000).
    public var maxEventsPerRequest: Int

    public init(registry: UnitSystemRegistry, maxBodyBytes: Int = 1 << 20, maxEventsPerRequest: Int = 1000) {
        self.registry = registry
        self.maxBodyBytes = maxBodyBytes
        self.maxEventsPerRequest = maxEventsPerRequest
    }
}

/// `POST /v1/events`, `GET /healthz`, `GET /metrics` (deploy/adapters/openapi.yaml).
///
/// - 401: no bearer token, or one that no unit system holds (tokens are compared by SHA-256).
/// - 413: body over `maxBodyBytes`; 400: not JSON, or any event invalid (every error, per event and field);
///   403: an event for a unit that is not the caller's.
/// - 202: only once every event of the request is confirmed by the broker or fsynced to the spool;
///   503: the spool is full (nothing of the request is lost: the caller keeps it and retries).
public enum Receiver {
    public static func router(settings: ReceiverSettings, forwarder: EventForwarder) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/healthz") { _, _ -> Response in
            let status = forwarder.settings.spool.status
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("status", "ok")
            writer.field("broker", forwarder.isSpooling ? "unavailable, spooling" : "ok")
            writer.field("spoolPendingEvents", status.pendingEvents)
            writer.field("spoolPendingBytes", status.pendingBytes)
            writer.field("spoolCapacityBytes", status.capacityBytes)
            writer.endObject()
            return json(.ok, writer)
        }
        router.get("/metrics") { _, _ -> Response in
            var text = forwarder.settings.spool.status.metrics
            text +=
                "# TYPE sameday_receiver_spooling gauge\nsameday_receiver_spooling \(forwarder.isSpooling ? 1 : 0)\n"
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/v1/events") { request, _ -> Response in
            try await handle(request, settings: settings, forwarder: forwarder)
        }
        return router
    }

    static func handle(_ request: Request, settings: ReceiverSettings, forwarder: EventForwarder) async throws
        -> Response
    {
        guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer "),
            let system = settings.registry.system(bearerToken: String(authorization.dropFirst(7)))
        else {
            var response = problem(.unauthorized, "a valid bearer token is required (Authorization: Bearer …)")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
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
        let parsed = EventBatch.parse(body, maxEvents: settings.maxEventsPerRequest)
        if !parsed.errors.isEmpty {
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
                .forbidden, "unit system \(system.name) may publish only for its own units; refused: \(list)")
        }
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

    public static func parse(_ body: [UInt8], maxEvents: Int) -> (events: [DossierEvent], errors: [Problem]) {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        guard let first = body.firstIndex(where: { !isSpace($0) }) else {
            return ([], [Problem(index: nil, field: nil, message: "empty body: send one event or an array of events")])
        }
        let elements: [Range<Int>]
        var single = false
        if body[first] == UInt8(ascii: "[") {
            guard let split = splitArray(body, from: first) else {
                return ([], [Problem(index: nil, field: nil, message: "malformed JSON: the array is not well formed")])
            }
            elements = split
        } else {
            elements = [first..<body.count]
            single = true
        }
        guard !elements.isEmpty else {
            return ([], [Problem(index: nil, field: nil, message: "the array holds no event")])
        }
        guard elements.count <= maxEvents else {
            return (
                [],
                [Problem(index: nil, field: nil, message: "\(elements.count) events; at most \(maxEvents) per request")]
            )
        }
        var events: [DossierEvent] = []
        var errors: [Problem] = []
        for (index, range) in elements.enumerated() {
            do {
                events.append(try DossierEvent.decode(bytes: Array(body[range])))
            } catch {
                errors.append(Problem(index: single ? nil : index, field: error.field, message: error.description))
            }
        }
        return (events, errors)
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
