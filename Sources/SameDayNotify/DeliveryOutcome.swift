/// What one attempt to hand a message to a channel came to (docs/notify.md, "Channels").
///
/// - `delivered`: the channel took the message (sendmail exited 0, the webhook answered 2xx).
/// - `retryable`: it may go through later: a timeout, a connection error, an HTTP 5xx or 429, sendmail's
///   EX_TEMPFAIL. `retryAfter` is what the other side asked for (HTTP `Retry-After`), in seconds.
/// - `permanent`: sending the same message again will fail the same way: another HTTP 4xx, a refused recipient, an
///   address SameDay will not hand to sendmail.
///
/// `reason` is for the failed-deliveries outbox and the log: one line, printable, bounded, and never a secret.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    case retryable(reason: String, retryAfter: Int64? = nil)
    case permanent(reason: String)

    public var reason: String? {
        switch self {
        case .delivered: nil
        case .retryable(let reason, _), .permanent(let reason): reason
        }
    }

    /// What another program or server said, fit for a reason: decoded as UTF-8 (invalid bytes replaced), surrounding
    /// white space trimmed, control characters escaped (`\n`, `\r`, `\t`, `\u{1B}`), cut to `limit` characters with
    /// "…" after.
    static func printable(_ bytes: some Collection<UInt8>, limit: Int = 500) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        let trimmed = text.unicodeScalars.drop { $0.properties.isWhitespace }.reversed().drop {
            $0.properties.isWhitespace
        }.reversed()
        var out = ""
        var count = 0
        for scalar in trimmed {
            guard count < limit else {
                out += "…"
                break
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
                    || scalar.properties.generalCategory == .format
                {
                    out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            count += 1
        }
        return out
    }
}
