import Testing

@testable import SameDayCore

/// The per-event and per-restart shortcuts (issue "half the CPU per event"): each gives the answer of the plain
/// version it replaced.
@Suite("Hot paths agree with their plain versions")
struct HotPathTests {
    let config = Fixture.config

    @Test("a routing key is matched in place exactly when it equals the key built from its parts")
    func routingKeyInPlace() {
        let codes = ["760", "26740", "000.00.15.H29", "a.b", ""]
        let keys =
            codes.flatMap { code in
                EventType.allCases.flatMap { type in
                    Block.allCases.map { Unit.routingKey(block: $0, code: code, type: type) }
                }
            } + [
                "", "district", "district.760", "district.760.received.x", "district.760.receive", "commune..received",
            ]
        for code in codes {
            for type in EventType.allCases {
                for block in Block.allCases {
                    for key in keys {
                        #expect(
                            Unit.routingKey(key, is: block, code: code, type: type)
                                == (key == Unit.routingKey(block: block, code: code, type: type)),
                            "\(key) against \(block).\(code).\(type.name)")
                    }
                }
            }
        }
    }

    @Test("a dossier code's agency is read from its end: a number of 1–6 digits, then a six-digit date")
    func agencyFromTheEnd() {
        #expect(DossierCode.agency(of: "760-220518-1") == "760")
        #expect(DossierCode.agency(of: "760-220518-123456") == "760")
        #expect(DossierCode.agency(of: "760-220518-1234567") == nil)
        #expect(DossierCode.agency(of: "760-2205181-1") == nil)
        #expect(DossierCode.agency(of: "760-x220518-1") == nil)
        #expect(DossierCode.agency(of: "760-220518-1a") == nil)
        #expect(DossierCode.agency(of: "760-220518") == nil)
        #expect(DossierCode.agency(of: "-220518-1") == nil)
        #expect(DossierCode.agency(of: "220518-1") == nil)
        #expect(DossierCode.agency(of: "") == nil)
        #expect(DossierCode.agency(of: "Sở-Y-tế-220518-0042") == "Sở-Y-tế")
    }

    @Test("a heap filled at once pops in (instant, value) order, as one filled entry by entry")
    func heapFilledAtOnce() {
        var rng = SplitMix64(seed: 7)
        let entries: [(at: Instant, value: Int)] = (0..<5000).map { i in (Instant(rng.next() % 300), i) }
        let expected = entries.sorted { $0.at != $1.at ? $0.at < $1.at : $0.value < $1.value }
        var one = InstantHeap<Int>()
        for e in entries { one.push(e.at, e.value) }
        var bulk = InstantHeap<Int>()
        for e in entries.prefix(10) { bulk.push(e.at, e.value) }
        bulk.push(contentsOf: Array(entries.dropFirst(10)))
        for heap in [one, bulk] {
            var heap = heap
            var popped: [(at: Instant, value: Int)] = []
            while let e = heap.pop() { popped.append(e) }
            #expect(popped.map(\.at) == expected.map(\.at))
            #expect(popped.map(\.value) == expected.map(\.value))
        }
    }

    @Test("a stored dossier decodes the same with the code cache as without, and a damaged code is still refused")
    func codeCache() throws {
        let cache = DossierRecord.CodeCache()
        for n in 0..<50 {
            var dossier = Dossier(code: "760-220518-\(n)")
            let received = DossierEvent(
                eventId: "r\(n)", dossier: dossier.code, unit: "760", procedure: Fixture.sameDay, type: .received,
                occurredAt: t("2022-05-18 08:00") + Int64(n), source: "test")
            _ = try dossier.apply(received, now: received.occurredAt, config: config)
            let bytes = DossierRecord.encode(dossier, config: config)
            let plain = try DossierRecord.decode(code: dossier.code, bytes, config: config)
            let cached = try DossierRecord.decode(code: dossier.code, bytes, config: config, codes: cache)
            #expect(DossierRecord.encode(cached, config: config) == DossierRecord.encode(plain, config: config))
            #expect(cached.lastEventAt == plain.lastEventAt)
        }
        // The unit code's bytes damaged: not a unit the configuration has, cached or not.
        var dossier = Dossier(code: "760-220518-99")
        let received = DossierEvent(
            eventId: "r", dossier: dossier.code, unit: "760", procedure: Fixture.sameDay, type: .received,
            occurredAt: t("2022-05-18 08:00"), source: "test")
        _ = try dossier.apply(received, now: received.occurredAt, config: config)
        var bytes = DossierRecord.encode(dossier, config: config)
        let unitAt = bytes.indices.first { bytes[$0...].starts(with: Array("760".utf8)) }!
        bytes[unitAt] = UInt8(ascii: "9")
        #expect(throws: DossierRecord.Unreadable.self) {
            _ = try DossierRecord.decode(code: dossier.code, bytes, config: config, codes: cache)
        }
        bytes[unitAt] = 0xFF
        #expect(throws: DossierRecord.Unreadable.self) {
            _ = try DossierRecord.decode(code: dossier.code, bytes, config: config, codes: cache)
        }
    }

    @Test("a stored record finds its codes by their bytes as the events did: a unit's own entry, its parent's, none")
    func recordCodesByBytes() throws {
        var dossier = Dossier(code: "760-220518-7")
        let steps: [(unit: String, procedure: String, type: EventType)] = [
            ("760", "760.000001", .received),  // the district's own entry
            ("26740", "760.000001", .transferred),  // a ward of 760: its parent's entry
            ("767", "760.000001", .transferred),  // another district: not in its catalog
            ("760", Fixture.sameDay, .transferred),  // the city's entry
            ("760", "760.000001", .resolved),
        ]
        for (n, step) in steps.enumerated() {
            let event = DossierEvent(
                eventId: "e\(n)", dossier: dossier.code, unit: step.unit, procedure: step.procedure, type: step.type,
                occurredAt: t("2022-05-18 08:00") + Int64(n * 60), source: "test")
            _ = try dossier.apply(event, now: event.occurredAt, config: config)
        }
        let entry = UInt32(config.catalog.firstIndex { $0.procedure == "760.000001" }!)
        #expect(dossier.events.map(\.procedure) == [entry, entry, .max, 0, entry])
        #expect(dossier.unlistedProcedure == "760.000001")
        for codes in [nil, DossierRecord.CodeCache()] {
            let bytes = DossierRecord.encode(dossier, config: config)
            let decoded = try DossierRecord.decode(code: dossier.code, bytes, config: config, codes: codes)
            #expect(decoded.events.map(\.unit) == dossier.events.map(\.unit))
            #expect(decoded.events.map(\.procedure) == dossier.events.map(\.procedure))
            #expect(decoded.unlistedProcedure == dossier.unlistedProcedure)
            #expect(DossierRecord.encode(decoded, config: config) == bytes)
        }
        // The procedure code's bytes damaged: refused, not read as another code.
        var bytes = DossierRecord.encode(dossier, config: config)
        let codeAt = bytes.indices.first { bytes[$0...].starts(with: Array("760.000001".utf8)) }!
        bytes[codeAt] = 0xFF
        #expect(throws: DossierRecord.Unreadable.self) {
            _ = try DossierRecord.decode(code: dossier.code, bytes, config: config)
        }
    }

    @Test("a settled dossier advances to no change and no timer however late; loaded, it arms what the replay armed")
    func settledDossiers() throws {
        // Stopped on the fifth of six days: some dossiers settled, others running, paused or awaiting a supplement.
        let first = LocalDate("2022-05-16")!
        let stop = LocalDate(year: 2022, month: 5, day: 20)!.startInstant + 11 * 3600
        let events = SyntheticMonth(firstDay: first, days: 6, dossiersPerUnitPerDay: 6, seed: 11)
            .events(config: config).filter { $0.occurredAt < stop }
        var replay = Replay(config: config)
        for e in events { _ = try replay.receive(e, at: e.occurredAt) }
        let clock = stop
        replay.advance(to: clock)
        var reloaded = Replay(config: config)
        reloaded.advance(to: clock)
        var settled = 0
        var unsettled = 0
        for dossier in replay.dossiers where !dossier.code.isEmpty {
            let record = DossierRecord.encode(dossier, config: config)
            if dossier.flags & Dossier.settledFlag != 0 {
                settled += 1
                for later in [clock, clock + 400 * 86_400] {
                    var copy = dossier
                    let actions = copy.advance(to: later, config: config)
                    #expect(actions == [.cancelTimer])
                    #expect(DossierRecord.encode(copy, config: config) == record)
                }
            } else {
                unsettled += 1
            }
            let decoded = try DossierRecord.decode(code: dossier.code, record, config: config)
            let loaded = reloaded.loadNew(decoded, storageKey: 0, queued: false)
            #expect(loaded)
        }
        #expect(settled > 20 && unsettled > 20, "settled \(settled), unsettled \(unsettled)")
        for dossier in replay.dossiers where !dossier.code.isEmpty {
            #expect(reloaded.timer(of: dossier.code) == replay.timer(of: dossier.code))
        }
    }

    @Test("a restart's loading refuses a second dossier with a held code, and the retirement mark follows the slot")
    func loadNewAndQueuedMarks() throws {
        var replay = Replay(config: config)
        replay.reserveCapacity(4)
        var dossier = Dossier(code: "760-220518-1")
        let received = DossierEvent(
            eventId: "r", dossier: dossier.code, unit: "760", procedure: Fixture.sameDay, type: .received,
            occurredAt: t("2022-05-18 08:00"), source: "test")
        _ = try dossier.apply(received, now: received.occurredAt, config: config)
        let first = replay.loadNew(dossier, storageKey: 5, queued: true)
        let second = replay.loadNew(dossier, storageKey: 6, queued: false)
        #expect(first && !second)
        #expect(replay.storageKey(of: dossier.code) == 5)
        #expect(replay.liveDossierCount == 1)
        let slot = try #require(replay.slot(of: dossier.code))
        let whileQueued = replay.markQueued(slot: slot)
        #expect(!whileQueued, "loaded as queued")
        replay.unmarkQueued(dossier.code)
        let afterUnmark = replay.markQueued(slot: slot)
        #expect(afterUnmark)
        replay.remove(dossier.code)
        #expect(replay.slot(of: dossier.code) == nil && replay.dossier(inSlot: slot) == nil, "not held")
        var next: Int64 = 9
        #expect(replay.storageKey(ofSlot: slot, assigning: &next) == nil && next == 9, "a free slot has no key")
        // The freed slot goes to the next dossier, unmarked and without a key.
        var other = Dossier(code: "760-220518-2")
        var event = received
        event.dossier = other.code
        _ = try other.apply(event, now: event.occurredAt, config: config)
        let loaded = replay.loadNew(other, storageKey: 0, queued: false)
        #expect(replay.slot(of: other.code) == slot && replay.dossier(inSlot: slot)?.code == other.code)
        let marked = replay.markQueued(slot: slot)
        #expect(replay.storageKey(ofSlot: slot, assigning: &next) == 9 && next == 10)
        #expect(loaded && marked)
    }

    /// The arithmetic as it read each day's `DaySchedule`, before the flattened stretches.
    enum PlainCalendar {
        static func nextWorkingInstant(_ c: WorkCalendar, _ t: Instant) -> Instant {
            var day = LocalTime.day(of: t)
            var sod = t - LocalTime.start(ofDay: day)
            for _ in 0..<WorkCalendar.maxScanDays {
                for st in c.schedule(ofDay: day).stretches where sod < Int64(st.end) {
                    return LocalTime.start(ofDay: day) + max(sod, Int64(st.start))
                }
                day += 1
                sod = 0
            }
            return WorkCalendar.never
        }

        static func add(_ c: WorkCalendar, _ workingSeconds: Int64, _ t: Instant) -> Instant {
            var w = workingSeconds
            if w <= 0 { return t }
            var day = LocalTime.day(of: t)
            var sod = t - LocalTime.start(ofDay: day)
            for _ in 0..<WorkCalendar.maxScanDays {
                let s = c.schedule(ofDay: day)
                if sod <= 0 && w > s.workingSeconds {
                    w -= s.workingSeconds
                } else {
                    for st in s.stretches where sod < Int64(st.end) {
                        let from = max(sod, Int64(st.start))
                        let avail = Int64(st.end) - from
                        if w <= avail { return LocalTime.start(ofDay: day) + from + w }
                        w -= avail
                    }
                }
                day += 1
                sod = 0
            }
            return WorkCalendar.never
        }

        static func workingSeconds(_ c: WorkCalendar, _ a: Instant, _ b: Instant) -> Int64 {
            if b < a { return -workingSeconds(c, b, a) }
            var total: Int64 = 0
            for day in LocalTime.day(of: a)...LocalTime.day(of: b) {
                let ds = LocalTime.start(ofDay: day)
                for st in c.schedule(ofDay: day).stretches {
                    let x = max(a - ds, Int64(st.start))
                    let y = min(b - ds, Int64(st.end))
                    if y > x { total += y - x }
                }
            }
            return total
        }

        static func nextWorkingDay(_ c: WorkCalendar, _ day: Int64) -> Int64? {
            (day + 1...day + WorkCalendar.maxScanDays).first { c.schedule(ofDay: $0).isWorkingDay }
        }
    }

    @Test(
        "calendar arithmetic on the flattened stretches gives the answers of each day's schedule, in and out of the cached years"
    )
    func flattenedCalendarArithmetic() {
        // Every view of the shipped calendars (regular, and same-day with extra sessions) and of the fixture's.
        let calendars = hcmc.calendars + hcmc.sameDayViews + Fixture.config.calendars + Fixture.config.sameDayViews
        var rng = SplitMix64(seed: 11)
        // 2021–2027 (the holidays' years), and around both ends of the dense cache (2000–2044).
        let spans: [(Int, Int)] = [(2021, 2028), (1999, 2001), (2044, 2046)]
        for calendar in calendars {
            for (first, last) in spans {
                let lo = LocalTime.start(ofDay: CivilCalendar.days(year: first, month: 1, day: 1))
                let hi = LocalTime.start(ofDay: CivilCalendar.days(year: last, month: 1, day: 1))
                for _ in 0..<60 {
                    let t = lo + Int64((rng.next() as UInt64) % UInt64(hi - lo))
                    // Seconds to add: within a session, a day, a few weeks; none; a whole day's.
                    let r: UInt64 = rng.next()
                    let choices: [Int64] = [Int64(r % 3_600), Int64(r % 90_000), Int64(r % 2_000_000), 0, 8 * 3600]
                    let w = choices[Int((rng.next() as UInt64) % 5)]
                    let u = t + Int64((rng.next() as UInt64) % (40 * 86_400)) - 10 * 86_400
                    #expect(calendar.nextWorkingInstant(atOrAfter: t) == PlainCalendar.nextWorkingInstant(calendar, t))
                    #expect(
                        calendar.add(workingSeconds: w, to: t) == PlainCalendar.add(calendar, w, t),
                        "\(calendar.id) +\(w) at \(t)")
                    #expect(calendar.workingSeconds(from: t, to: u) == PlainCalendar.workingSeconds(calendar, t, u))
                    let day = LocalTime.day(of: t)
                    #expect(calendar.nextWorkingDay(after: day) == PlainCalendar.nextWorkingDay(calendar, day))
                    let schedule = calendar.schedule(ofDay: day)
                    let limits = calendar.sameDayLimits(ofDay: day)
                    #expect(limits.cutoff == schedule.cutoff && limits.cutoffSource == schedule.cutoffSource)
                    #expect(limits.close == schedule.close)
                }
            }
        }
    }
}
