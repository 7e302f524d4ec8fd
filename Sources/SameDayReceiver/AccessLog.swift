import Foundation
import HTTPTypes
import Hummingbird
import RabbitMQ
import SameDayAdapters
import SameDayCore

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
