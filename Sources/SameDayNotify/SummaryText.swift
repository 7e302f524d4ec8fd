import SameDayCore
import SameDayReport

/// One person's daily summary (notify.json `dailySummary`): her units' same-day figures so far today, from the
/// workers' daily rollup files, and the dossiers overdue and not yet resolved.
public struct DailySummary: Sendable, Equatable {
    public var day: LocalDate
    public var sentAt: Instant
    /// Her units, each with today's figures (nil: no rollup file for today yet).
    public var units: [(unit: Unit, figures: RollupFigures?)]
    /// Overdue dossiers of her units, oldest first.
    public var overdue: [Alert]

    public init(day: LocalDate, sentAt: Instant, units: [(unit: Unit, figures: RollupFigures?)], overdue: [Alert]) {
        self.day = day
        self.sentAt = sentAt
        self.units = units
        self.overdue = overdue
    }

    public static func == (a: DailySummary, b: DailySummary) -> Bool {
        a.day == b.day && a.sentAt == b.sentAt && a.overdue == b.overdue && a.units.map(\.unit) == b.units.map(\.unit)
            && a.units.map(\.figures) == b.units.map(\.figures)
    }

    /// The most units named one by one (a city supervisor's block has hundreds): the rest are added up.
    public static let maxUnits = 15
    /// The most overdue dossiers named.
    public static let maxOverdue = 30
}

/// A daily summary in Vietnamese: subject, plain text, HTML.
public struct SummaryText: Sendable, Equatable {
    public var subject: String
    public var plain: String
    public var html: String

    public init(_ summary: DailySummary, scope: String, configuration: Configuration) {
        let date = VietnameseFormat.date(summary.day)
        subject = "[SameDay] \(scope): tổng hợp ngày \(date)"
        let known = summary.units.compactMap { u in u.figures.map { (u.unit, $0) } }
        let total = known.reduce(RollupFigures()) { $0 + $1.1 }
        // Units with overdue dossiers first, then the busiest.
        let ranked = known.sorted {
            ($0.1.inProgressOverdue, $0.1.sameDayReceived, $1.0.code) > (
                $1.1.inProgressOverdue, $1.1.sameDayReceived, $0.0.code
            )
        }
        let named = ranked.prefix(DailySummary.maxUnits)
        func line(_ name: String, _ f: RollupFigures) -> String {
            "\(name): tiếp nhận \(VietnameseFormat.integer(f.sameDayReceived)) hồ sơ giải quyết trong ngày, "
                + "đã giải quyết trong ngày \(VietnameseFormat.integer(f.sameDayResolvedSameDay)); "
                + "đang giải quyết quá hạn \(VietnameseFormat.integer(f.inProgressOverdue))"
        }
        let overdueRows = summary.overdue.prefix(DailySummary.maxOverdue).map {
            DigestText.Row($0, configuration: configuration)
        }

        var p: [String] = [
            "SameDay — \(scope)", "", "Tổng hợp ngày \(date), đến \(VietnameseFormat.dateTime(summary.sentAt)):", "",
        ]
        if known.isEmpty {
            p.append("Chưa có số liệu trong ngày.")
        } else {
            if known.count > 1 { p.append("- " + line("Tổng cộng \(known.count) đơn vị", total)) }
            for (unit, f) in named { p.append("- " + line(unit.name, f)) }
            if known.count > named.count {
                p.append("- … và \(VietnameseFormat.integer(known.count - named.count)) đơn vị khác.")
            }
        }
        p.append("")
        if overdueRows.isEmpty {
            p.append("Không có hồ sơ quá hạn chưa giải quyết.")
        } else {
            p.append("Hồ sơ quá hạn chưa giải quyết (\(VietnameseFormat.integer(summary.overdue.count))):")
            for (i, row) in overdueRows.enumerated() {
                p.append("\(i + 1). [\(row.level)] \(row.dossier)")
                p.append("   \(row.procedure)")
                p.append("   Đơn vị: \(row.unit) · Hạn: \(row.due)")
            }
            if summary.overdue.count > overdueRows.count {
                p.append("… và \(VietnameseFormat.integer(summary.overdue.count - overdueRows.count)) hồ sơ khác.")
            }
        }
        p += ["", "-- ", "SameDay. Thư tự động, vui lòng không trả lời."]
        plain = p.joined(separator: "\n") + "\n"

        let e = DigestText.escape
        var h = "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
        h +=
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>\(e(subject))</title></head>"
        h +=
            "<body style=\"font-family:Arial,Helvetica,sans-serif;font-size:15px;color:#1a1a1a;margin:0;padding:12px\">"
        h += "<h1 style=\"font-size:18px;margin:0 0 12px\">\(e(scope))</h1>"
        h += "<p>Tổng hợp ngày \(e(date)), đến \(e(VietnameseFormat.dateTime(summary.sentAt))):</p>"
        if known.isEmpty {
            h += "<p>Chưa có số liệu trong ngày.</p>"
        } else {
            h += "<ul>"
            if known.count > 1 { h += "<li><b>\(e(line("Tổng cộng \(known.count) đơn vị", total)))</b></li>" }
            for (unit, f) in named { h += "<li>\(e(line(unit.name, f)))</li>" }
            if known.count > named.count {
                h += "<li>… và \(VietnameseFormat.integer(known.count - named.count)) đơn vị khác.</li>"
            }
            h += "</ul>"
        }
        if overdueRows.isEmpty {
            h += "<p>Không có hồ sơ quá hạn chưa giải quyết.</p>"
        } else {
            h += "<p>Hồ sơ quá hạn chưa giải quyết (\(VietnameseFormat.integer(summary.overdue.count))):</p>"
            for row in overdueRows {
                h +=
                    "<div style=\"border-left:4px solid \(row.colour);padding:6px 10px;margin:0 0 8px;background:#f7f7f7\">"
                h += "<div style=\"font-weight:bold\">\(e(row.level)) · \(e(row.dossier))</div>"
                h +=
                    "<div>\(e(row.procedure))</div><div style=\"color:#444\">\(e(row.unit)) · Hạn: \(e(row.due))</div></div>"
            }
        }
        h += "<p style=\"color:#777;font-size:13px\">SameDay. Thư tự động, vui lòng không trả lời.</p></body></html>\n"
        html = h
    }
}
