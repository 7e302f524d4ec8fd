/// Held dossiers' slots by code, compared as bytes: an open-addressing table with linear probing on FNV-1a of the
/// code's UTF-8. Every event asks it whether its dossier is held, and a restart puts a million codes in it; a
/// `[String: Int]` hashed each code with SipHash and compared by canonical equivalence, where the worker's store,
/// its tombstones and the ownership check all compare bytes.
///
/// The table keeps no codes: the caller owns them (`Replay` keeps each in its dossier) and answers "is the code in
/// slot k these bytes?". Each bucket holds the top 32 bits of the mixed hash beside the slot, which is enough to
/// place an entry again when the table grows or a neighbour is removed, and to skip most foreign entries without
/// reading their code.
struct CodeSlotIndex: Sendable {
    /// Per bucket: 0 when empty, else `hashHigh << 32 | (slot + 1)`. A power of two in size, at most half full.
    private var buckets: [UInt64]
    /// `64 - log2(buckets.count)`: a hash's bucket is its top bits.
    private var shift: UInt64
    /// Codes held.
    private(set) var count = 0

    init() {
        buckets = [UInt64](repeating: 0, count: 16)
        shift = 60
    }

    /// The hash the table places a code by: FNV-1a of its bytes, mixed by a multiply so that its top bits (the
    /// bucket) depend on every byte. Codes that differ in their last digit differ only in FNV-1a's low bits.
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        FNV1a.hash(bytes: bytes) &* 0x9E37_79B9_7F4A_7C15
    }

    /// Whether two codes have the same bytes.
    @inline(__always)
    static func sameBytes<Code: StringProtocol>(_ code: Code, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // Strings read from events and rows are native and contiguous; the fallback walks the view.
        code.utf8.withContiguousStorageIfAvailable { sameBytes($0, bytes) } ?? code.utf8.elementsEqual(bytes)
    }

    /// Whether two byte runs are equal: lengths first, then eight bytes at a time (a code is 10–40 bytes; a byte
    /// loop was most of a restart's catalog lookups).
    @inline(__always)
    static func sameBytes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        let (rawA, rawB) = (UnsafeRawBufferPointer(a), UnsafeRawBufferPointer(b))
        var offset = 0
        while offset + 8 <= a.count {
            guard
                rawA.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                    == rawB.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            else { return false }
            offset += 8
        }
        while offset < a.count {
            guard a[offset] == b[offset] else { return false }
            offset += 1
        }
        return true
    }

    private var mask: Int { buckets.count - 1 }

    @inline(__always) private func home(ofHigh high: UInt64) -> Int { Int(high >> (shift - 32)) }

    /// The slot of the code with `hash`, `isCode(slot)` telling whether a candidate slot holds it.
    func find(hash: UInt64, isCode: (Int) -> Bool) -> Int? {
        let high = hash >> 32
        var b = home(ofHigh: high)
        while true {
            let entry = buckets[b]
            if entry == 0 { return nil }
            if entry >> 32 == high, isCode(Int(entry & 0xFFFF_FFFF) - 1) { return Int(entry & 0xFFFF_FFFF) - 1 }
            b = (b + 1) & mask
        }
    }

    /// Puts the code with `hash` at `slot` unless it is held: then it returns the slot it is held at and changes
    /// nothing.
    mutating func insert(hash: UInt64, slot: Int, isCode: (Int) -> Bool) -> Int? {
        precondition(slot >= 0 && slot < Int(UInt32.max), "a slot beyond the table's 32 bits")
        if (count + 1) * 2 > buckets.count { grow(to: buckets.count * 2) }
        let high = hash >> 32
        var b = home(ofHigh: high)
        while true {
            let entry = buckets[b]
            if entry == 0 { break }
            if entry >> 32 == high, isCode(Int(entry & 0xFFFF_FFFF) - 1) { return Int(entry & 0xFFFF_FFFF) - 1 }
            b = (b + 1) & mask
        }
        buckets[b] = high << 32 | UInt64(slot + 1)
        count += 1
        return nil
    }

    /// Takes the code with `hash` out and returns its slot (nil if it is not held). The entries after it in its run
    /// move back into the gap where their home allows, so lookups need no markers for removed entries.
    mutating func remove(hash: UInt64, isCode: (Int) -> Bool) -> Int? {
        let high = hash >> 32
        var gap = home(ofHigh: high)
        while true {
            let entry = buckets[gap]
            if entry == 0 { return nil }
            if entry >> 32 == high, isCode(Int(entry & 0xFFFF_FFFF) - 1) { break }
            gap = (gap + 1) & mask
        }
        let slot = Int(buckets[gap] & 0xFFFF_FFFF) - 1
        var next = (gap + 1) & mask
        while buckets[next] != 0 {
            // An entry may fill the gap when its home is not after the gap (cyclically) on the way to where it is.
            let homeOfNext = home(ofHigh: buckets[next] >> 32)
            if (next - homeOfNext) & mask >= (next - gap) & mask {
                buckets[gap] = buckets[next]
                gap = next
            }
            next = (next + 1) & mask
        }
        buckets[gap] = 0
        count -= 1
        return slot
    }

    /// Room for `count` codes without growing (a restart knows how many rows it will load).
    mutating func reserveCapacity(_ count: Int) {
        var size = buckets.count
        while size < count * 2 { size *= 2 }
        if size > buckets.count { grow(to: size) }
    }

    private mutating func grow(to size: Int) {
        let old = buckets
        buckets = [UInt64](repeating: 0, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        let mask = self.mask
        for entry in old where entry != 0 {
            var b = home(ofHigh: entry >> 32)
            while buckets[b] != 0 { b = (b + 1) & mask }
            buckets[b] = entry
        }
    }
}

extension StringProtocol {
    /// Whether the two hold the same UTF-8 bytes. Codes compare as bytes (the index, the store and the ownership
    /// rule hold bytes; `==` compares by Unicode equivalence). Native strings, as events and rows give, compare
    /// eight bytes at a time; `utf8.elementsEqual`, on every event, walked the views a byte at a time.
    @inline(__always)
    func hasSameBytes<Other: StringProtocol>(as other: Other) -> Bool {
        other.utf8.withContiguousStorageIfAvailable { CodeSlotIndex.sameBytes(self, $0) }
            ?? utf8.elementsEqual(other.utf8)
    }
}
