import SameDayCore
import SameDayReport
import Testing

@Suite struct VietnameseFormatTests {
    @Test func integersUseDotsForThousands() {
        #expect(VietnameseFormat.integer(0) == "0")
        #expect(VietnameseFormat.integer(999) == "999")
        #expect(VietnameseFormat.integer(1000) == "1.000")
        #expect(VietnameseFormat.integer(229_642) == "229.642")
        #expect(VietnameseFormat.integer(694_309) == "694.309")
        #expect(VietnameseFormat.integer(1_234_567) == "1.234.567")
        #expect(VietnameseFormat.integer(-1234) == "-1.234")
    }

    @Test func percentagesUseADecimalComma() {
        #expect(VietnameseFormat.percent(tenths: 1000) == "100,0 %")
        #expect(VietnameseFormat.percent(tenths: 975) == "97,5 %")
        #expect(VietnameseFormat.percent(tenths: 5) == "0,5 %")
        #expect(VietnameseFormat.percent(tenths: nil) == "—")
    }

    @Test func datesAreDayMonthYear() {
        #expect(VietnameseFormat.date(LocalDate(year: 2022, month: 5, day: 15)!) == "15/05/2022")
        #expect(VietnameseFormat.date(LocalDate(year: 2022, month: 12, day: 1)!) == "01/12/2022")
        #expect(VietnameseFormat.dayMonth(LocalDate(year: 2022, month: 6, day: 3)!) == "03/06")
        // 10:00 UTC is 17:00 in Ho Chi Minh City.
        #expect(VietnameseFormat.dateTime(RFC3339.parse("2022-05-16T10:00:00Z")!) == "16/05/2022 17:00")
        #expect(VietnameseFormat.dateTime(RFC3339.parse("2022-05-31T23:05:00+07:00")!) == "31/05/2022 23:05")
    }

    @Test func workingTimeInHoursAndMinutes() {
        #expect(VietnameseFormat.workingTime(minutes: 45) == "45 phút")
        #expect(VietnameseFormat.workingTime(minutes: 120) == "2 giờ")
        #expect(VietnameseFormat.workingTime(minutes: 200) == "3 giờ 20 phút")
        #expect(VietnameseFormat.workingTime(minutes: -65) == "-1 giờ 5 phút")
        #expect(VietnameseFormat.workingTime(minutes: 0) == "0 phút")
    }
}
