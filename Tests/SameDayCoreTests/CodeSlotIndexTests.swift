import Foundation
import PropertyBased
import Testing

@testable import SameDayCore

/// The held dossiers' index (`CodeSlotIndex`) against a dictionary keyed by the codes' bytes, under inserts and
/// removals in random order, with real hashes and with hashes chosen to collide and wrap.
@Suite("The dossier index agrees with a dictionary keyed by bytes")
struct CodeSlotIndexTests {
    @Test("bytes compare eight at a time as they do one at a time: every length to 40, a difference at every place")
    func sameBytes() {
        for length in 0...40 {
            let base = (0..<length).map { UInt8(truncatingIfNeeded: 0x30 + $0 * 7) }
            base.withUnsafeBufferPointer { a in
                let copy = base
                copy.withUnsafeBufferPointer { #expect(CodeSlotIndex.sameBytes(a, $0), "length \(length)") }
                for place in 0..<length {
                    var other = base
                    other[place] ^= 0x01
                    other.withUnsafeBufferPointer { #expect(!CodeSlotIndex.sameBytes(a, $0), "\(length), \(place)") }
                }
                for shorter in 0..<length {
                    Array(base.prefix(shorter)).withUnsafeBufferPointer {
                        #expect(!CodeSlotIndex.sameBytes(a, $0) && !CodeSlotIndex.sameBytes($0, a))
                    }
                }
            }
        }
    }

    @Test("strings and substrings compare by their bytes, not by Unicode equivalence, whatever their length")
    func stringsCompareByBytes() {
        // Precomposed and decomposed "é": equal to `==`, different bytes, as the store and the index see them.
        let precomposed = "30-260105-\u{E9}", decomposed = "30-260105-e\u{301}"
        #expect(precomposed == decomposed)
        #expect(!precomposed.hasSameBytes(as: decomposed) && !decomposed.hasSameBytes(as: precomposed))
        // Small strings (up to 15 bytes, held inline) and native ones, against each other and against substrings.
        for length in [0, 1, 7, 8, 15, 16, 31, 40] {
            let code = String((0..<length).map { Character(UnicodeScalar(UInt8(0x41 + $0 % 26))) })
            let copy = String(decoding: Array(code.utf8), as: UTF8.self)
            #expect(code.hasSameBytes(as: copy), "length \(length)")
            #expect(("x" + code).dropFirst().hasSameBytes(as: code), "substring, length \(length)")
            #expect(!code.hasSameBytes(as: code + "0") && !(code + "0").hasSameBytes(as: code), "length \(length)")
            if length > 0 {
                #expect(!code.hasSameBytes(as: code.dropLast() + "!"), "last byte, length \(length)")
            }
        }
    }

    /// The table's users: codes per slot (nil: free), as `Replay` keeps them in its dossiers.
    struct Model {
        var index = CodeSlotIndex()
        var codes: [String?] = []
        var reference: [[UInt8]: Int] = [:]
        /// The hash each code is placed by (a test may collide them on purpose).
        let hash: (String) -> UInt64

        func isCode(_ code: String) -> (Int) -> Bool {
            { slot in codes[slot].map { Array($0.utf8) == Array(code.utf8) } ?? false }
        }

        mutating func insert(_ code: String) {
            let slot = codes.firstIndex(where: { $0 == nil }) ?? codes.count
            let held = index.insert(hash: hash(code), slot: slot, isCode: isCode(code))
            #expect(held == reference[Array(code.utf8)], "insert \(code.debugDescription)")
            guard held == nil else { return }
            if slot == codes.count { codes.append(code) } else { codes[slot] = code }
            reference[Array(code.utf8)] = slot
        }

        mutating func remove(_ code: String) {
            let taken = index.remove(hash: hash(code), isCode: isCode(code))
            #expect(taken == reference[Array(code.utf8)], "remove \(code.debugDescription)")
            if let taken {
                codes[taken] = nil
                reference[Array(code.utf8)] = nil
            }
        }

        func check(_ pool: [String]) {
            #expect(index.count == reference.count)
            for code in pool {
                #expect(
                    index.find(hash: hash(code), isCode: isCode(code)) == reference[Array(code.utf8)],
                    "find \(code.debugDescription)")
            }
        }
    }

    static func realHash(_ code: String) -> UInt64 {
        var code = code
        return code.withUTF8 { CodeSlotIndex.hash($0) }
    }

    /// Codes that differ in their last digit, canonical twins (equal as Swift strings, not as bytes), the empty code.
    static let pool: [String] =
        (0..<300).map { "000.00.15.H29-220518-\($0)" } + [
            "K", "\u{212A}", "\u{00C5}", "A\u{030A}", "Phường Bến Nghé",
            "Phường Bến Nghé".decomposedStringWithCanonicalMapping, "",
        ]

    func run(hash: @escaping (String) -> UInt64, steps: Int, seed: UInt64) {
        var model = Model(hash: hash)
        var rng = SplitMix64(seed: seed)
        let pool = Self.pool
        for step in 0..<steps {
            let code = pool[Int(rng.next() % UInt64(pool.count))]
            // More inserts than removals early, so that the table grows, then as many of each.
            if rng.next() % 100 < (step < steps / 3 ? 80 : 50) { model.insert(code) } else { model.remove(code) }
            if step % 97 == 0 { model.check(pool) }
        }
        model.check(pool)
        for code in pool { model.remove(code) }
        model.check(pool)
        #expect(model.index.count == 0)
    }

    @Test("real hashes: random inserts and removals, canonical twins kept apart")
    func realHashes() {
        run(hash: Self.realHash, steps: 6_000, seed: 1)
        run(hash: Self.realHash, steps: 6_000, seed: 2)
    }

    @Test("hashes chosen to collide: runs that wrap past the table's end, removals that move entries back")
    func collidingHashes() {
        // Four homes at the top of the table (the top bits place an entry), so runs wrap to bucket 0; the low 32
        // bits differ so that only the code check tells entries apart within a home.
        let homes: [UInt64] = [.max, .max - (1 << 60), 1 << 63, 0]
        run(hash: { Self.homes(homes, $0) }, steps: 4_000, seed: 3)
        // Every code in one home: the fingerprint matches everywhere, the bytes decide.
        run(hash: { _ in 0xFFFF_FFFF_0000_0000 }, steps: 2_000, seed: 4)
    }

    static func homes(_ homes: [UInt64], _ code: String) -> UInt64 {
        homes[Int(realHash(code) % UInt64(homes.count))]
    }

    @Test("a reserved index holds what it was sized for without growing, then grows past it")
    func reserveThenGrow() {
        var model = Model(hash: Self.realHash)
        model.index.reserveCapacity(1_000)
        let codes = (0..<3_000).map { "760-220518-\($0)" }
        for code in codes { model.insert(code) }
        model.check(codes)
        for code in codes where code.hasSuffix("7") { model.remove(code) }
        model.check(codes)
    }

    @Test("the replay holds canonical twins as two dossiers, and removes one without the other")
    func replayTwins() throws {
        let config = Fixture.config
        var replay = Replay(config: config)
        let composed = "Bến Nghé-220518-1", decomposed = "Bến Nghé-220518-1".decomposedStringWithCanonicalMapping
        #expect(composed == decomposed)  // equal as Swift strings, not as bytes
        let unit = config.units[0].code
        let at = LocalTime.start(ofDay: CivilCalendar.days(year: 2022, month: 5, day: 18)) + 9 * 3600
        for (n, code) in [composed, decomposed].enumerated() {
            try replay.receive(
                DossierEvent(
                    eventId: "e\(n)", dossier: code, unit: unit, procedure: "P", type: .received, occurredAt: at,
                    source: "test"),
                at: at)
        }
        #expect(replay.liveDossierCount == 2)
        #expect(replay.slot(of: composed) != replay.slot(of: decomposed))
        // The slot a check remembers serves only an event with the same bytes.
        _ = replay.heldUnitCheck(of: composed, unit: 0)
        try replay.receive(
            DossierEvent(
                eventId: "e2", dossier: decomposed, unit: unit, procedure: "P", type: .resolved, occurredAt: at + 60,
                outcome: .approved, source: "test"),
            at: at + 60)
        #expect(replay.dossier(decomposed)?.eventCount == 2)
        #expect(replay.dossier(composed)?.eventCount == 1)
        #expect(replay.remove(decomposed)?.code.utf8.elementsEqual(decomposed.utf8) == true)
        #expect(replay.holds(composed) && !replay.holds(decomposed))
        #expect(replay.dossier(composed)?.code.utf8.elementsEqual(composed.utf8) == true)
    }
}
