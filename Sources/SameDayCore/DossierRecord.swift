/// A dossier's compact state as the worker stores it (one row per open or retained dossier): what `Dossier` keeps in
/// memory, with unit and procedure codes instead of configuration indices, so a registry or catalog edited between
/// two runs is read by code, exactly as a replay of the events would be.
///
/// Layout, little-endian: version (1), nextArrival u32, alertEpisode u16, firedMask u8, flags u8, then the unit
/// codes and the procedure codes (count u16, then length u16 + UTF-8 each), then the events (count u32, 42 bytes
/// each: idHash u64, at i64, seq i64, newDueAt i64, arrival u32, unit index u16, procedure index u16, type u8,
/// detail u8).
public enum DossierRecord {
    static let version: UInt8 = 1
    /// A stored dossier is capped like an event body: far more events than any real dossier has.
    public static let maxEvents = 100_000

    /// Times a stored event may carry: what the worker admits (from 2000-01-01, `EventTimeBounds.standard`) up to
    /// 2100. A damaged row with a time far outside would send the calendars through centuries at every restart.
    static let plausibleTimes: ClosedRange<Instant> =
        EventTimeBounds.standard.earliest...(LocalDate(year: 2100, month: 1, day: 1)!.startInstant)

    public struct Unreadable: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The stored form of `dossier`.
    public static func encode(_ dossier: Dossier, config: Configuration) -> [UInt8] {
        var units: [String] = []
        var procedures: [String] = []
        func index(_ s: String, in table: inout [String]) -> UInt16 {
            if let i = table.firstIndex(of: s) { return UInt16(i) }
            table.append(s)
            return UInt16(table.count - 1)
        }
        var out: [UInt8] = []
        out.reserveCapacity(16 + dossier.events.count * 42 + 32)
        out.append(version)
        put(dossier.nextArrival, &out)
        put(dossier.alertEpisode, &out)
        out.append(dossier.firedMask)
        out.append(dossier.flags)
        var body: [UInt8] = []
        body.reserveCapacity(dossier.events.count * 42)
        for e in dossier.events {
            let unit = index(config.units[Int(e.unit)].code, in: &units)
            let code =
                e.procedure == UInt32.max
                ? (dossier.unlistedProcedure ?? "") : config.catalog[Int(e.procedure)].procedure
            let procedure = index(code, in: &procedures)
            put(e.idHash, &body)
            put(UInt64(bitPattern: e.at), &body)
            put(UInt64(bitPattern: e.seq), &body)
            put(UInt64(bitPattern: e.newDueAt), &body)
            put(e.arrival, &body)
            put(unit, &body)
            put(procedure, &body)
            body.append(e.type.rawValue)
            body.append(e.detail)
        }
        for table in [units, procedures] {
            put(UInt16(table.count), &out)
            for s in table {
                let bytes = Array(s.utf8)
                put(UInt16(bytes.count), &out)
                out += bytes
            }
        }
        put(UInt32(dossier.events.count), &out)
        out += body
        return out
    }

    /// Reads a stored dossier back; throws when the bytes are damaged or name a unit the configuration no longer has.
    ///
    /// `codes`: the codes read by earlier calls, reused by their bytes (a restart decodes a million records that name
    /// the same few hundred codes); not shared between threads.
    public static func decode(code: String, _ bytes: [UInt8], config: Configuration, codes: CodeCache? = nil)
        throws(Unreadable) -> Dossier
    {
        try bytes.withUnsafeBufferPointer { buffer throws(Unreadable) in
            try decode(code: code, buffer: buffer, config: config, codes: codes)
        }
    }

    /// `decode` of a record lent in place (a store's own buffer, valid for the call).
    public static func decode(
        code: String, buffer bytes: UnsafeBufferPointer<UInt8>, config: Configuration, codes: CodeCache? = nil
    ) throws(Unreadable) -> Dossier {
        var r = Reader(bytes: bytes)
        guard try r.byte() == version else { throw Unreadable(description: "unknown dossier record version") }
        var d = Dossier(code: code)
        d.nextArrival = try r.u32()
        d.alertEpisode = try r.u16()
        d.firedMask = try r.byte()
        d.flags = try r.byte()
        // The codes are found by their bytes: a record names its unit and procedure codes once, and no string is
        // made of them unless a procedure is outside the catalog. Their tables live on the stack for the call (a
        // record names one or two of each; two arrays a record were a fifth of a restart's reading thread).
        let unitCount = Int(try r.u16())
        return try withUnsafeTemporaryAllocation(of: UnitID.self, capacity: unitCount) { unitIDs throws(Unreadable) in
            for index in 0..<unitCount {
                let raw = try r.takeRange(Int(try r.u16()))
                guard let id = r.withBytes(raw, { config.unitID(bytes: $0) }) else {
                    let code = try r.string(raw, codes: codes)
                    throw Unreadable(description: "unit \"\(code.prefix(100))\" is not in units.csv")
                }
                unitIDs.initializeElement(at: index, to: id)
            }
            let procedureCount = Int(try r.u16())
            return try withUnsafeTemporaryAllocation(of: ProcedureCode.self, capacity: procedureCount) {
                procedureCodes throws(Unreadable) in
                // A code outside the catalog is made a string here (refused if it is not UTF-8, used or not).
                var unlisted: [(index: Int, code: String)] = []
                for index in 0..<procedureCount {
                    let raw = try r.takeRange(Int(try r.u16()))
                    let listed = r.withBytes(raw, { config.listedProcedure(bytes: $0) })
                    if listed == nil { unlisted.append((index, try r.string(raw, codes: codes))) }
                    procedureCodes.initializeElement(at: index, to: ProcedureCode(listed: listed ?? -1, raw: raw))
                }
                try readEvents(
                    &r, into: &d, unitIDs: UnsafeBufferPointer(unitIDs),
                    procedureCodes: UnsafeBufferPointer(procedureCodes), unlisted: unlisted, config: config,
                    codes: codes)
                return d
            }
        }
    }

    /// A procedure code of a record's table: its number among the catalog's codes (-1: outside the catalog) and
    /// where its bytes are.
    private struct ProcedureCode {
        var listed: Int
        var raw: Range<Int>
    }

    /// The record's events, after its code tables.
    private static func readEvents(
        _ r: inout Reader, into d: inout Dossier, unitIDs: UnsafeBufferPointer<UnitID>,
        procedureCodes: UnsafeBufferPointer<ProcedureCode>, unlisted: [(index: Int, code: String)],
        config: Configuration, codes: CodeCache?
    ) throws(Unreadable) {
        let count = Int(try r.u32())
        guard count <= maxEvents, count * 42 == r.remaining else {
            throw Unreadable(description: "event count \(count) does not match the record's length")
        }
        d.events.reserveCapacity(count)
        var previous: CompactEvent?
        // The catalog entry of the last (unit, procedure) pair: a dossier's events nearly always share one.
        var resolved: (unitIndex: Int, procedureIndex: Int, procedure: UInt32)?
        for _ in 0..<count {
            let idHash = try r.u64()
            let at = Int64(bitPattern: try r.u64())
            let seq = Int64(bitPattern: try r.u64())
            let newDueAt = Int64(bitPattern: try r.u64())
            let arrival = try r.u32()
            let unitIndex = Int(try r.u16())
            let procedureIndex = Int(try r.u16())
            guard let type = EventType(rawValue: try r.byte()) else {
                throw Unreadable(description: "unknown event type")
            }
            let detail = try r.byte()
            guard Self.plausibleTimes.contains(at), newDueAt == 0 || Self.plausibleTimes.contains(newDueAt) else {
                throw Unreadable(description: "an event time is outside 2000–2100")
            }
            guard unitIndex < unitIDs.count, procedureIndex < procedureCodes.count else {
                throw Unreadable(description: "an event refers past the code tables")
            }
            let unit = unitIDs[unitIndex]
            var procedure = UInt32.max
            if let resolved, resolved.unitIndex == unitIndex, resolved.procedureIndex == procedureIndex {
                procedure = resolved.procedure
            } else {
                let code = procedureCodes[procedureIndex]
                if code.listed >= 0, let i = config.catalogIndex(listed: code.listed, unit: unit) {
                    procedure = i
                } else {
                    let c: String
                    if let made = unlisted.first(where: { $0.index == procedureIndex }) {
                        c = made.code
                    } else {
                        // Listed, but only by other units: the one place a catalog code becomes a string.
                        c = try r.string(code.raw, codes: codes)
                    }
                    if d.unlistedProcedure.map({ c < $0 }) ?? true { d.unlistedProcedure = c }
                }
                resolved = (unitIndex, procedureIndex, procedure)
            }
            let event = CompactEvent(
                idHash: idHash, at: at, seq: seq, newDueAt: newDueAt, arrival: arrival, unit: unit,
                procedure: procedure, type: type, detail: detail)
            // Stored in order: a record out of order was not written by `encode`.
            if let previous, event.orderedBefore(previous) {
                throw Unreadable(description: "events are not in order")
            }
            previous = event
            d.events.append(event)
        }
    }

    private static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var offset = 0
        var remaining: Int { bytes.count - offset }

        /// The next `n` bytes' range, for `withBytes` or `string`.
        mutating func takeRange(_ n: Int) throws(Unreadable) -> Range<Int> {
            guard n >= 0, n <= remaining else { throw Unreadable(description: "the record is truncated") }
            defer { offset += n }
            return offset..<offset + n
        }

        func withBytes<T>(_ range: Range<Int>, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
            body(UnsafeBufferPointer(rebasing: bytes[range]))
        }

        /// The code in `range` as a string, shared through `codes` when they hold it; refused when it is not UTF-8.
        func string(_ range: Range<Int>, codes: CodeCache?) throws(Unreadable) -> String {
            let raw = UnsafeBufferPointer(rebasing: bytes[range])
            if let known = codes?.string(raw) { return known }
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw Unreadable(description: "a code is not valid UTF-8")
            }
            codes?.remember(s, raw)
            return s
        }

        mutating func byte() throws(Unreadable) -> UInt8 {
            guard remaining >= 1 else { throw Unreadable(description: "the record is truncated") }
            defer { offset += 1 }
            return bytes[offset]
        }
        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(Unreadable) -> T {
            let size = MemoryLayout<T>.size
            guard size <= remaining else { throw Unreadable(description: "the record is truncated") }
            // Read in place (a restart reads a million records): little-endian, any alignment.
            let v = UnsafeRawBufferPointer(bytes).loadUnaligned(fromByteOffset: offset, as: T.self)
            offset += size
            return T(littleEndian: v)
        }
        mutating func u16() throws(Unreadable) -> UInt16 { try integer(UInt16.self) }
        mutating func u32() throws(Unreadable) -> UInt32 { try integer(UInt32.self) }
        mutating func u64() throws(Unreadable) -> UInt64 { try integer(UInt64.self) }
    }
}

extension DossierRecord {
    /// Procedure codes outside the catalog already read, found again by their bytes (FNV-1a, then compared byte for
    /// byte), so the dossiers that name one share its string. (Units and catalog codes are found in the
    /// configuration's tables without a string.) Bounded: a store that names more distinct codes than `limit` stops
    /// adding them.
    public final class CodeCache {
        private var byHash: [UInt64: String] = [:]
        private let limit: Int

        public init(limit: Int = 100_000) { self.limit = limit }

        func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
            guard let known = byHash[FNV1a.hash(bytes: bytes)], CodeSlotIndex.sameBytes(known, bytes) else {
                return nil
            }
            return known
        }

        func remember(_ string: String, _ bytes: UnsafeBufferPointer<UInt8>) {
            guard byHash.count < limit else { return }
            byHash[FNV1a.hash(bytes: bytes)] = string
        }

    }
}
