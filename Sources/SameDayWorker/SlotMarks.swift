/// A mark with a value on some of the engine's dossier slots (`Replay.slot(of:)`), visited in the order they were
/// first marked. The worker marks a dossier for every event (changed since the last commit, not saved since the
/// last row save): keyed by slot, that is an array index, where keyed by code it was a string hash and compare on a
/// table larger than the cache.
///
/// Each marked slot is in `order` once per marking; a slot unmarked (its dossier retired) and marked again (a new
/// dossier took the slot) may be in it twice, and `values` decides which entries stand.
struct SlotMarks {
    private static let unmarked = Int64.min
    private var values: [Int64] = []
    private var order: [Int] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// The value of a marked slot; nil when unmarked.
    func value(_ slot: Int) -> Int64? {
        guard slot < values.count, values[slot] != Self.unmarked else { return nil }
        return values[slot]
    }

    /// Marks `slot` with `value`, or, if marked already, keeps the smaller of the two.
    mutating func mark(_ slot: Int, value: Int64) {
        precondition(value != Self.unmarked, "Int64.min is the unmarked sentinel")
        if slot >= values.count {
            values.append(contentsOf: repeatElement(Self.unmarked, count: slot + 1 - values.count))
        }
        let old = values[slot]
        if old == Self.unmarked {
            values[slot] = value
            order.append(slot)
            count += 1
        } else if value < old {
            values[slot] = value
        }
    }

    /// Unmarks `slot`; returns whether it was marked.
    @discardableResult
    mutating func unmark(_ slot: Int) -> Bool {
        guard value(slot) != nil else { return false }
        values[slot] = Self.unmarked
        count -= 1
        return true
    }

    /// Visits each marked slot once, in the order it was marked, and unmarks it.
    mutating func drain(_ body: (_ slot: Int, _ value: Int64) -> Void) {
        for slot in order where values[slot] != Self.unmarked {
            let value = values[slot]
            values[slot] = Self.unmarked
            body(slot, value)
        }
        order.removeAll(keepingCapacity: true)
        count = 0
    }
}
