import SameDayCore

/// Vietnamese number and date formatting for the HTML report. Pure and locale-free, so the page is the same on every
/// machine: thousands are separated by dots (229.642), decimals by a comma (97,5), dates are dd/MM/yyyy.
public enum VietnameseFormat {
    /// 229642 → "229.642"; -1234 → "-1.234".
    public static func integer(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(".") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// A percentage in tenths (975 → "97,5 %"); nil (nothing resolved) → "—".
    public static func percent(tenths: Int?) -> String {
        guard let t = tenths else { return "—" }
        let sign = t < 0 ? "-" : ""
        return "\(sign)\(integer(Int(t.magnitude) / 10)),\(Int(t.magnitude) % 10) %"
    }

    /// 2022-05-15 → "15/05/2022".
    public static func date(_ d: LocalDate) -> String {
        let c = d.components
        return "\(two(c.day))/\(two(c.month))/\(c.year)"
    }

    /// An instant in local time (UTC+07:00) → "15/05/2022 17:00".
    public static func dateTime(_ t: Instant) -> String {
        let day = LocalTime.day(of: t)
        let seconds = t - LocalTime.start(ofDay: day)
        return "\(date(LocalDate(dayNumber: day))) \(two(Int(seconds / 3600))):\(two(Int(seconds % 3600 / 60)))"
    }

    /// 2022-05-15 → "15/05", for chart axes.
    public static func dayMonth(_ d: LocalDate) -> String {
        let c = d.components
        return "\(two(c.day))/\(two(c.month))"
    }

    /// Working minutes as hours and minutes: 200 → "3 giờ 20 phút", 45 → "45 phút", -65 → "-1 giờ 5 phút".
    public static func workingTime(minutes: Int) -> String {
        let m = Int(minutes.magnitude)
        let sign = minutes < 0 ? "-" : ""
        if m < 60 { return "\(sign)\(m) phút" }
        return m % 60 == 0 ? "\(sign)\(integer(m / 60)) giờ" : "\(sign)\(integer(m / 60)) giờ \(m % 60) phút"
    }

    private static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}

/// Text made safe inside HTML (element content and quoted attributes), for pages and e-mails built by hand.
public enum HTMLText {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
