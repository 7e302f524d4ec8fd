extension Alert {
    /// The most bytes an alert line may have: what `jsonLine()` writes for the longest codes and a long recipient
    /// list is a few kilobytes; a larger body is refused unread.
    public static let maxJSONBytes = 64 * 1024
    /// The most recipients an alert may name.
    public static let maxRecipients = 1000

    /// Reads an alert as `jsonLine()` writes it (what `sameday.alerts` carries and the alert files hold). Anything
    /// else is refused with the key named: an unknown key, a missing or mistyped field, an unknown level or block, a
    /// time that is not RFC 3339, a code that is empty where a dossier alert needs one or longer than the event limits.
    /// `source` names the input in errors (a queue, a file).
    public static func decode(json bytes: [UInt8], source: String = "alert") throws(ConfigurationError) -> Alert {
        let reader = JSONReader(file: source)
        let o = try reader.root(
            bytes,
            allowed: [
                "alertId", "level", "dossier", "unit", "block", "procedure", "episode", "due", "firedAt", "thresholdAt",
                "minutesLeft", "recipients", "lateFired", "receivedAt", "predictedAt", "queueAhead",
            ], maxBytes: maxJSONBytes)
        func text(_ key: String, maxBytes: Int, mayBeEmpty: Bool = false) throws(ConfigurationError) -> String {
            guard let value = try o.string(key) else { throw o.error(key, "missing") }
            if value.isEmpty && !mayBeEmpty { throw o.error(key, "must not be empty") }
            if value.utf8.count > maxBytes { throw o.error(key, "longer than \(maxBytes) bytes") }
            if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw o.error(key, "holds a control character")
            }
            return value
        }
        func instant(_ key: String, optional: Bool = false) throws(ConfigurationError) -> Instant? {
            guard let value = try o.string(key) else {
                if optional { return nil }
                throw o.error(key, "missing")
            }
            guard let t = RFC3339.parse(value) else { throw o.error(key, "not an RFC 3339 time: \(value.prefix(40))") }
            return t
        }
        let levelName = try text("level", maxBytes: 32)
        guard let level = AlertLevel(name: levelName) else {
            throw o.error("level", "unknown level \"\(levelName)\"")
        }
        let blockName = try text("block", maxBytes: 32)
        guard let block = Block(rawValue: blockName) else { throw o.error("block", "unknown block \"\(blockName)\"") }
        let isSourceAlert = level == .sourceSilent
        let dossier = try text("dossier", maxBytes: DossierEvent.maxCodeLength, mayBeEmpty: isSourceAlert)
        let procedure = try text("procedure", maxBytes: DossierEvent.maxCodeLength, mayBeEmpty: isSourceAlert)
        guard let episode = try o.int("episode", in: 0...1_000_000) else { throw o.error("episode", "missing") }
        guard let firedAt = try instant("firedAt") else { throw o.error("firedAt", "missing") }
        guard let thresholdAt = try instant("thresholdAt") else { throw o.error("thresholdAt", "missing") }
        let recipients = try o.strings("recipients") ?? []
        if recipients.count > maxRecipients { throw o.error("recipients", "more than \(maxRecipients)") }
        for r in recipients
        where r.isEmpty || r.utf8.count > 320 || r.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw o.error("recipients", "an address is empty, longer than 320 bytes or holds a control character")
        }
        guard let lateFired = try o.bool("lateFired") else { throw o.error("lateFired", "missing") }
        return Alert(
            alertId: try text("alertId", maxBytes: 64), level: level, dossier: dossier,
            unit: try text("unit", maxBytes: DossierEvent.maxCodeLength), block: block, procedure: procedure,
            episode: episode, due: try instant("due", optional: true), firedAt: firedAt, thresholdAt: thresholdAt,
            minutesLeft: try o.int("minutesLeft", in: -10_000_000...10_000_000), recipients: recipients,
            lateFired: lateFired, receivedAt: try instant("receivedAt", optional: true),
            predictedAt: try instant("predictedAt", optional: true),
            queueAhead: try o.int("queueAhead", in: 0...1_000_000))
    }
}
