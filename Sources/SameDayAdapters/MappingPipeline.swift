import Foundation
import SameDayFiles

/// Reads and maps records on a thread of its own, a bounded number of batches ahead of the caller, so that parsing
/// and mapping (CPU) overlap with publishing (waiting for the broker's confirms). Memory stays bounded: at most
/// `depth` batches of `batchSize` records wait.
final class MappingPipeline: @unchecked Sendable {
    typealias Item = (record: SourceRecord, mapped: MappedRecord)

    private let condition = NSCondition()
    private var batches: [[Item]] = []
    private var finished = false
    private var failure: (any Error)?
    private var cancelled = false
    private let depth: Int

    init(reader: RecordReader, mapper: RecordMapper, batchSize: Int = 1024, depth: Int = 4) {
        self.depth = depth
        // The reader moves to the mapping thread and is used only there from now on.
        let handoff = Handoff(reader)
        NamedThread.start("sameday.adapter.mapping") { [self] in
            let reader = handoff.value
            var batch: [Item] = []
            batch.reserveCapacity(batchSize)
            do {
                while let record = try reader.nextRecord() {
                    batch.append((record, mapper.map(record)))
                    if batch.count == batchSize {
                        guard put(batch) else { return }
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                if !batch.isEmpty { _ = put(batch) }
                finish(nil)
            } catch {
                finish(error)
            }
        }
    }

    /// The next batch in file order; nil at the end of the file; throws what the reader threw.
    func next() throws -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && !finished { condition.wait() }
        if !batches.isEmpty {
            condition.broadcast()
            return batches.removeFirst()
        }
        if let failure { throw failure }
        return nil
    }

    /// Lets the reading thread end early (the caller stopped).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    private func put(_ batch: [Item]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while batches.count >= depth && !cancelled { condition.wait() }
        if cancelled { return false }
        batches.append(batch)
        condition.broadcast()
        return true
    }

    private func finish(_ error: (any Error)?) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }
}

/// Moves a non-Sendable value to another thread that becomes its only user.
private final class Handoff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
