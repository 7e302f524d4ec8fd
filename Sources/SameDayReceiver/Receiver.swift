import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore

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
                let message = EventMessage.make(event, configuration: configuration, names: settings.names)
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
