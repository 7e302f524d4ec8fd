import SameDayCore

/// The report's Vietnamese labels: blocks, alert levels and the columns of Biểu 06/VPCP/KSTT (docs/rules.md §6.1).
public enum ReportLabels {
    public static func block(_ b: Block?) -> String {
        switch b {
        case .district: "Quận, huyện, TP Thủ Đức"
        case .commune: "Phường, xã, thị trấn"
        case .department: "Sở, ban, ngành"
        case .vertical: "Đơn vị ngành dọc"
        case nil: "Toàn thành phố"
        }
    }

    /// Alert levels (docs/rules.md §5.1), in the order the page lists them.
    public static let levels: [(code: String, label: String)] = [
        ("at_risk", "Có nguy cơ trễ hạn"),
        ("warning", "Sắp đến hạn"),
        ("critical", "Sắp quá hạn (khẩn)"),
        ("overdue", "Quá hạn"),
        ("escalated", "Quá hạn, báo cấp trên"),
        ("resolved_late", "Giải quyết trễ hạn"),
        ("cleared", "Đã giải quyết, gỡ cảnh báo"),
        ("source_silent", "Đơn vị mất kết nối"),
    ]

    public static func level(_ code: String) -> String { levels.first { $0.code == code }?.label ?? code }

    /// Biểu 06's column groups over `RollupFigures.values` (in that order) plus the on-time rate: a group label
    /// and its sub-columns. A group of one column spans both header rows.
    public static let columnGroups: [(group: String, columns: [String])] = [
        ("Tiếp nhận", ["Tổng số", "Trực tuyến", "Trực tiếp, bưu chính", "Kỳ trước chuyển qua"]),
        ("Đã giải quyết", ["Tổng số", "Trước hạn", "Đúng hạn", "Quá hạn", "Rút hồ sơ"]),
        ("Đang giải quyết", ["Tổng số", "Trong hạn", "Quá hạn"]),
        ("Tạm dừng (chờ bổ sung, phí)", []),
        ("Không bổ sung, bỏ", []),
        ("Thủ tục giải quyết trong ngày", ["Tiếp nhận", "Đúng hạn", "Trong ngày"]),
        ("Ngoài danh mục", []),
        ("Tỷ lệ đúng hạn", []),
    ]
}
