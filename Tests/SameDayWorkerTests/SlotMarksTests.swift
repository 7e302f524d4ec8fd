import Testing

@testable import SameDayWorker

@Suite("Marks on dossier slots")
struct SlotMarksTests {
    @Test("a slot keeps the smallest value it was marked with, and is visited once, in the order first marked")
    func marksKeepTheMinimumAndTheOrder() {
        var marks = SlotMarks()
        marks.mark(7, value: 20)
        marks.mark(2, value: 5)
        marks.mark(7, value: 10)
        marks.mark(7, value: 30)
        #expect(marks.count == 2 && marks.value(7) == 10 && marks.value(3) == nil && marks.value(99) == nil)
        var visited: [(Int, Int64)] = []
        marks.drain { visited.append(($0, $1)) }
        #expect(visited.map(\.0) == [7, 2] && visited.map(\.1) == [10, 5])
        #expect(marks.isEmpty && marks.value(7) == nil)
    }

    @Test("a slot unmarked and marked again (a new dossier in a freed slot) is visited once, with its new value")
    func unmarkedThenReused() {
        var marks = SlotMarks()
        marks.mark(4, value: 1)
        let first = marks.unmark(4)
        let second = marks.unmark(4)
        #expect(first && !second)
        #expect(marks.isEmpty)
        marks.mark(4, value: 9)
        var visited: [(Int, Int64)] = []
        marks.drain { visited.append(($0, $1)) }
        #expect(visited.count == 1 && visited[0] == (4, 9))
        marks.drain { _, _ in Issue.record("drained twice") }
    }
}
