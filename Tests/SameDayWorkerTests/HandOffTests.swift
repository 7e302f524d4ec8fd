import Testing

@testable import SameDayWorker

@Suite("The restart's hand-off between the reading and the loading thread")
struct HandOffTests {
    final class Batch: Sendable {
        let number: Int
        init(_ number: Int) { self.number = number }
    }

    @Test("items come out in order, each held only by its taker (a shared batch is copied at its first change)")
    func takenItemsAreUnique() throws {
        // Put before any is taken: a producer still holding its last item would make the check race.
        let handOff = HandOff<Batch>(capacity: 100)
        for n in 0..<100 { handOff.put(Batch(n)) }
        handOff.finish(nil)
        var taken: [Int] = []
        var shared = 0
        while var batch = try handOff.take() {
            if !isKnownUniquelyReferenced(&batch) { shared += 1 }
            taken.append(batch.number)
        }
        #expect(taken == Array(0..<100))
        #expect(shared == 0)
    }

    @Test("the producer's error reaches the taker once the items before it are taken")
    func failureAfterItems() throws {
        struct Broken: Error {}
        let handOff = HandOff<Batch>(capacity: 2)
        handOff.put(Batch(1))
        handOff.finish(Broken())
        #expect(try handOff.take()?.number == 1)
        #expect(throws: Broken.self) { _ = try handOff.take() }
    }
}
