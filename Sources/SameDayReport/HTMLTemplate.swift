/// The page's Mustache template. A Swift string rather than a bundled resource file: the `sameday` binary is then
/// the whole tool, wherever it is copied. `{{…}}` escapes every value; nothing here is triple-braced.
enum HTMLTemplate {
    static let page = #"""
        <!DOCTYPE html>
        <html lang="vi">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
        <title>{{#simulated}}[Số liệu mô phỏng] {{/simulated}}{{title}} — {{periodText}}</title>
        <style>
        :root { --ink: #1d2733; --muted: #5b6775; --line: #d5dbe3; --head: #eef2f7; --blue: #2f6fb3; --green: #2e8b57; --red: #c0392b; --amber: #d68910; }
        * { box-sizing: border-box; }
        body { margin: 0; font-family: "Noto Sans", "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: var(--ink); background: #f7f9fb; font-size: 14px; line-height: 1.45; }
        header { background: #12426e; color: #fff; padding: 18px 28px; }
        header h1 { margin: 0 0 4px; font-size: 22px; }
        header p { margin: 0; opacity: .9; }
        main { padding: 16px 28px 40px; max-width: 1500px; margin: 0 auto; }
        section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 18px; margin: 16px 0; }
        h2 { font-size: 17px; margin: 0 0 10px; color: #12426e; }
        h3 { font-size: 15px; margin: 14px 0 6px; }
        .note { color: var(--muted); font-size: 12.5px; margin: 6px 0; }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 12px; }
        .card { background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--blue); border-radius: 6px; padding: 10px 14px; }
        .card .label { color: var(--muted); font-size: 13px; }
        .card .value { font-size: 26px; font-weight: 700; }
        .card .sub { color: var(--muted); font-size: 12px; }
        .scroll { overflow-x: auto; }
        /* Biểu 06 has 19 figure columns: the form's tables stay on one screen at the city's six-digit figures. */
        table.form { font-size: 12px; }
        table.form th, table.form td { padding: 3px 4px; }
        table { border-collapse: collapse; width: 100%; font-size: 13px; }
        th, td { border: 1px solid var(--line); padding: 4px 7px; }
        th { background: var(--head); font-weight: 600; text-align: center; vertical-align: bottom; }
        td.name { min-width: 170px; }
        td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
        td.code { white-space: nowrap; font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
        tr.total td { font-weight: 700; background: #f3f6fa; }
        .bar { background: #e7ecf2; height: 12px; border-radius: 3px; min-width: 120px; }
        .bar span { display: block; height: 12px; border-radius: 3px; }
        .good { background: var(--green); } .fair { background: var(--amber); } .poor { background: var(--red); }
        .status-overdue { color: var(--red); font-weight: 700; }
        .status-risk { color: var(--amber); font-weight: 700; }
        .legend span { display: inline-block; margin-right: 16px; }
        .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; }
        svg text { font-family: inherit; font-size: 12px; fill: var(--muted); }
        details summary { cursor: pointer; font-weight: 600; margin: 8px 0; }
        .empty { color: var(--muted); font-style: italic; }
        .simulated { background: #fff3cd; color: #6b4e00; border-bottom: 2px solid var(--amber); padding: 10px 28px; margin: 0; font-weight: 700; }
        @media (max-width: 700px) { main { padding: 8px; } header { padding: 12px; } .card .value { font-size: 20px; } }
        @media print { body { background: #fff; } section { break-inside: avoid; border: none; } details { display: block; } }
        </style>
        </head>
        <body>
        <header>
        <h1>{{title}}</h1>
        <p>Kỳ báo cáo: <strong id="period">{{periodText}}</strong> ({{dayCount}} ngày) · Thành phố Hồ Chí Minh</p>
        </header>
        {{#simulated}}<p class="simulated" id="simulated">SỐ LIỆU MÔ PHỎNG: số liệu trên trang này được tạo bằng <code>sameday simulate</code>, không phải số liệu của đơn vị nào (simulated data).</p>
        {{/simulated}}
        <main>
        <div class="cards" id="summary">
        {{#cards}}<div class="card"><div class="label">{{label}}</div><div class="value">{{value}}</div><div class="sub">{{note}}</div></div>
        {{/cards}}</div>

        <section id="bieu06-blocks">
        <h2>Biểu 06: kết quả giải quyết theo khối</h2>
        <div class="scroll"><table class="form">
        <thead>
        <tr><th rowspan="2">Khối</th>{{#blockHeader.groups}}{{#single}}<th rowspan="2">{{label}}</th>{{/single}}{{^single}}<th colspan="{{span}}">{{label}}</th>{{/single}}{{/blockHeader.groups}}</tr>
        <tr>{{#blockHeader.columns}}<th>{{.}}</th>{{/blockHeader.columns}}</tr>
        </thead>
        <tbody>
        {{#blockRows}}<tr{{#total}} class="total"{{/total}}><td class="name">{{name}}</td>{{#cells}}<td class="num">{{.}}</td>{{/cells}}<td class="num">{{rate}}</td></tr>
        {{/blockRows}}</tbody>
        </table></div>
        <p class="note">Tiếp nhận = trực tuyến + trực tiếp, bưu chính + kỳ trước chuyển qua = đã giải quyết + đang giải quyết + tạm dừng + không bổ sung. Rút hồ sơ được tính là đúng hạn và ghi riêng. Tạm dừng, đang giải quyết: tại 24:00 ngày cuối kỳ.</p>
        </section>

        <section id="seed">
        <h2>Giải quyết trong ngày so với chỉ tiêu</h2>
        <div class="scroll"><table>
        <thead><tr><th>Khối</th><th>Tiếp nhận (thủ tục trong ngày)</th><th>Giải quyết đúng hạn</th><th>Giải quyết trong ngày</th><th>Chỉ tiêu (tài liệu gốc)</th><th>Chênh lệch</th><th>Đạt so với chỉ tiêu</th></tr></thead>
        <tbody>
        {{#seed.lines}}<tr{{#total}} class="total"{{/total}}><td>{{name}}</td><td class="num">{{received}}</td><td class="num">{{inTime}}</td><td class="num">{{sameDay}}</td><td class="num">{{target}}</td><td class="num">{{difference}}</td><td class="num">{{share}}</td></tr>
        {{/seed.lines}}</tbody>
        </table></div>
        <p class="note">Chỉ tiêu: số hồ sơ tiếp nhận và giải quyết trong ngày theo khối trong Tháng hành động {{seed.seedPeriod}} (tin của Sở Nội vụ, kịch bản <code>{{seedName}}</code>), tỷ lệ đúng hạn 100 %.{{^seed.matchesPeriod}} <strong>Kỳ báo cáo này khác kỳ của chỉ tiêu: chỉ để tham khảo.</strong>{{/seed.matchesPeriod}}</p>
        </section>

        <section id="chart">
        <h2>Tiếp nhận, giải quyết và quá hạn theo ngày</h2>
        <p class="legend"><span><i style="background:#2f6fb3"></i>Tiếp nhận mới</span><span><i style="background:#2e8b57"></i>Đã giải quyết</span><span><i style="background:#c0392b"></i>Giải quyết quá hạn</span></p>
        <svg viewBox="0 0 {{chart.width}} {{chart.height}}" width="100%" role="img" aria-label="{{chart.summary}}" xmlns="http://www.w3.org/2000/svg">
        <title>{{chart.summary}}</title>
        {{#chart.ticks}}<line x1="{{chart.plotLeft}}" x2="{{chart.plotRight}}" y1="{{y}}" y2="{{y}}" stroke="#e3e8ee"/><text x="{{chart.plotLeft}}" dx="-6" y="{{y}}" dy="4" text-anchor="end">{{label}}</text>
        {{/chart.ticks}}<g fill="#2f6fb3">{{#chart.received}}<rect x="{{x}}" y="{{y}}" width="{{chart.barWidth}}" height="{{height}}"><title>{{title}}</title></rect>{{/chart.received}}</g>
        <g fill="#2e8b57">{{#chart.resolved}}<rect x="{{x}}" y="{{y}}" width="{{chart.barWidth}}" height="{{height}}"><title>{{title}}</title></rect>{{/chart.resolved}}</g>
        <g fill="#c0392b">{{#chart.late}}<rect x="{{x}}" y="{{y}}" width="{{chart.barWidth}}" height="{{height}}"><title>{{title}}</title></rect>{{/chart.late}}</g>
        <line x1="{{chart.plotLeft}}" x2="{{chart.plotRight}}" y1="{{chart.plotBottom}}" y2="{{chart.plotBottom}}" stroke="#8a96a3"/>
        {{#chart.labels}}<text x="{{x}}" y="{{chart.plotBottom}}" dy="18" text-anchor="middle">{{text}}</text>{{/chart.labels}}
        </svg>
        <p class="note">{{chart.summary}}. Tiếp nhận mới: trực tuyến và trực tiếp, bưu chính trong ngày (không gồm hồ sơ chuyển qua).</p>
        </section>

        <section id="rates">
        <h2>Tỷ lệ đúng hạn theo đơn vị (thấp nhất trước)</h2>
        <div class="scroll"><table>
        <thead><tr><th>#</th><th>Mã</th><th>Đơn vị</th><th>Khối</th><th>Đã giải quyết</th><th>Quá hạn</th><th>Tỷ lệ đúng hạn</th><th></th></tr></thead>
        <tbody>
        {{#rates}}<tr><td class="num">{{rank}}</td><td class="code">{{code}}</td><td>{{name}}</td><td>{{block}}</td><td class="num">{{resolved}}</td><td class="num">{{late}}</td><td class="num">{{rate}}</td><td><div class="bar"><span class="{{tone}}" style="width:{{width}}%"></span></div></td></tr>
        {{/rates}}{{^rates}}<tr><td colspan="8" class="empty">Chưa có hồ sơ nào được giải quyết trong kỳ.</td></tr>{{/rates}}
        </tbody>
        </table></div>
        {{#unratedUnits}}<p class="note">{{.}} đơn vị không có hồ sơ giải quyết trong kỳ, không xếp hạng.</p>{{/unratedUnits}}
        </section>

        <section id="dossiers">
        <h2>Hồ sơ quá hạn hoặc sắp đến hạn cuối kỳ</h2>
        {{#dossiers.given}}
        <p>Quá hạn: <strong>{{dossiers.overdueCount}}</strong> · Sắp đến hạn: <strong>{{dossiers.atRiskCount}}</strong></p>
        <div class="scroll"><table>
        <thead><tr><th>Hồ sơ</th><th>Đơn vị</th><th>Khối</th><th>Thủ tục</th><th>Tình trạng</th><th>Cảnh báo gần nhất</th><th>Hạn giải quyết</th><th>{{dossiers.leftHeader}}</th></tr></thead>
        <tbody>
        {{#dossiers.lines}}<tr><td class="code">{{dossier}}</td><td class="code">{{unit}}</td><td>{{block}}</td><td class="code">{{procedure}}</td><td class="{{#overdue}}status-overdue{{/overdue}}{{^overdue}}status-risk{{/overdue}}">{{status}}</td><td>{{lastAlert}}</td><td class="num">{{due}}</td><td class="num">{{left}}</td></tr>
        {{/dossiers.lines}}{{^dossiers.lines}}<tr><td colspan="8" class="empty">Không có hồ sơ quá hạn hoặc sắp đến hạn theo cảnh báo.</td></tr>{{/dossiers.lines}}
        </tbody>
        </table></div>
        {{#dossiers.more}}<p class="note">… và {{.}} hồ sơ nữa (không liệt kê).</p>{{/dossiers.more}}
        <p class="note">Nguồn: cảnh báo của worker đến hết kỳ. Một hồ sơ được liệt kê khi cảnh báo gần nhất của nó (sắp đến hạn, khẩn, quá hạn, báo cấp trên) chưa được gỡ bằng cảnh báo giải quyết; hồ sơ chưa từng có cảnh báo không có ở đây. Thời gian còn lại: {{dossiers.leftNote}}.</p>
        {{/dossiers.given}}
        {{^dossiers.given}}<p class="empty">Không có tệp cảnh báo (chưa cho --alerts): không liệt kê được hồ sơ quá hạn hoặc sắp đến hạn.</p>{{/dossiers.given}}
        </section>

        <section id="alerts">
        <h2>Cảnh báo trong kỳ theo mức</h2>
        {{#alerts.given}}
        <div class="scroll"><table>
        <thead><tr><th>Mức</th><th>Mã</th>{{#alerts.blocks}}<th>{{.}}</th>{{/alerts.blocks}}<th>Tổng</th></tr></thead>
        <tbody>
        {{#alerts.lines}}<tr><td>{{label}}</td><td class="code">{{code}}</td>{{#cells}}<td class="num">{{.}}</td>{{/cells}}<td class="num">{{total}}</td></tr>
        {{/alerts.lines}}<tr class="total"><td>Tổng</td><td></td>{{#alerts.blocks}}<td></td>{{/alerts.blocks}}<td class="num">{{alerts.total}}</td></tr>
        </tbody>
        </table></div>
        <p class="note">Mỗi cảnh báo tính một lần (theo alertId), theo thời điểm phát trong kỳ; {{alerts.lateFired}} cảnh báo phát muộn do worker ngừng chạy lúc đến ngưỡng.</p>
        {{/alerts.given}}
        {{^alerts.given}}<p class="empty">Không có tệp cảnh báo (chưa cho --alerts).</p>{{/alerts.given}}
        </section>

        <section id="forecast">
        <h2>Dự báo trễ hạn (at_risk) theo đơn vị</h2>
        {{#forecast.given}}
        {{#forecast.any}}<div class="scroll"><table>
        <thead><tr><th>Đơn vị</th><th>Mã</th><th>Báo trước, vẫn trễ hạn</th><th>Báo trước, đã kịp giải quyết</th><th>Trễ hạn mà không báo trước</th></tr></thead>
        <tbody>
        {{#forecast.lines}}<tr><td>{{unit}}</td><td class="code">{{code}}</td><td class="num">{{late}}</td><td class="num">{{saved}}</td><td class="num">{{missed}}</td></tr>
        {{/forecast.lines}}<tr class="total"><td>Tổng</td><td></td><td class="num">{{forecast.late}}</td><td class="num">{{forecast.saved}}</td><td class="num">{{forecast.missed}}</td></tr>
        </tbody>
        </table></div>
        {{#forecast.more}}<p class="note">và {{.}} đơn vị khác (trong tệp cảnh báo).</p>{{/forecast.more}}{{/forecast.any}}
        {{^forecast.any}}<p class="empty">Không có hồ sơ nào được dự báo trễ hạn hoặc trễ hạn trong kỳ.</p>{{/forecast.any}}
        <p class="note">Mỗi hồ sơ thủ tục giải quyết trong ngày tính một lần: được cảnh báo “có nguy cơ trễ hạn” từ hàng chờ của đơn vị (docs/rules.md §5.6), rồi trễ hạn hoặc giải quyết kịp; cột cuối là hồ sơ trễ hạn chưa từng được dự báo.</p>
        {{/forecast.given}}
        {{^forecast.given}}<p class="empty">Không có tệp cảnh báo (chưa cho --alerts).</p>{{/forecast.given}}
        </section>

        <details id="bieu06-units">
        <summary>Biểu 06 theo đơn vị</summary>
        {{#unitBlocks}}<section>
        <h3>{{name}} ({{count}} đơn vị)</h3>
        <div class="scroll"><table class="form">
        <thead>
        <tr><th rowspan="2">Mã</th><th rowspan="2">Đơn vị</th>{{#blockHeader.groups}}{{#single}}<th rowspan="2">{{label}}</th>{{/single}}{{^single}}<th colspan="{{span}}">{{label}}</th>{{/single}}{{/blockHeader.groups}}</tr>
        <tr>{{#blockHeader.columns}}<th>{{.}}</th>{{/blockHeader.columns}}</tr>
        </thead>
        <tbody>
        {{#rows}}<tr><td class="code">{{code}}</td><td class="name">{{name}}</td>{{#cells}}<td class="num">{{.}}</td>{{/cells}}<td class="num">{{rate}}</td></tr>
        {{/rows}}</tbody>
        </table></div>
        </section>
        {{/unitBlocks}}
        </details>

        <p class="note" id="sources">Số liệu: rollup ngày (daily/YYYY-MM-DD/units.csv) trong {{rollupSources}}, cộng theo ngày như lệnh <code>sameday report</code>{{#alertSources}}; cảnh báo: {{.}}{{/alertSources}}{{^alertSources}}; không có tệp cảnh báo{{/alertSources}}. Trang này không tải gì từ mạng.</p>
        </main>
        </body>
        </html>

        """#
}
