import SameDayCore
import SameDayReport

/// The board's page, its login page and its assets: Vietnamese, one column on a 360-pixel phone and a table on a
/// desk screen, nothing fetched from anywhere but the board (the Content-Security-Policy says so too). The script
/// keeps the list live from the event stream (`/api/events`) and refreshes the working minutes left every minute
/// from `/api/board`.
public enum BoardPage {
    static func escape(_ s: String) -> String { HTMLText.escape(s) }

    static let head = """
        <!doctype html>
        <html lang="vi">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="stylesheet" href="/board.css">
        """

    public static func login(message: String?) -> String {
        head + """
            <title>Đăng nhập — Bảng theo dõi hồ sơ trong ngày</title>
            </head>
            <body class="login">
            <main>
            <h1>Bảng theo dõi hồ sơ giải quyết trong ngày</h1>
            <p class="lead">Đăng nhập bằng địa chỉ thư công vụ đã đăng ký nhận cảnh báo.</p>
            \(message.map { "<p class=\"error\" role=\"alert\">\(escape($0))</p>" } ?? "")
            <form method="post" action="/login">
            <label for="person">Địa chỉ thư</label>
            <input id="person" name="person" type="email" autocomplete="username" required maxlength="320">
            <label for="password">Mật khẩu</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="256">
            <button type="submit">Đăng nhập</button>
            </form>
            </main>
            </body>
            </html>
            """
    }

    public static func board(person: String) -> String {
        head + """
            <title>Hồ sơ trong ngày có nguy cơ trễ hạn</title>
            </head>
            <body>
            <header>
            <h1>Hồ sơ trong ngày có nguy cơ trễ hạn</h1>
            <div class="who"><span>\(escape(person))</span>
            <form method="post" action="/logout"><button type="submit" class="link">Đăng xuất</button></form></div>
            <p id="status" role="status" data-state="connecting">Đang kết nối…</p>
            </header>
            <main>
            <section id="units" aria-label="Đơn vị"></section>
            <section class="filters" aria-label="Lọc">
            <label>Đơn vị <select id="filter-unit"><option value="">Tất cả đơn vị</option></select></label>
            <label>Mức <select id="filter-level">
            <option value="">Tất cả mức</option>
            <option value="escalated">\(ReportLabels.level("escalated"))</option>
            <option value="overdue">\(ReportLabels.level("overdue"))</option>
            <option value="critical">\(ReportLabels.level("critical"))</option>
            <option value="warning">\(ReportLabels.level("warning"))</option>
            <option value="at_risk">\(ReportLabels.level("at_risk"))</option>
            </select></label>
            <span id="count"></span>
            </section>
            <table id="alerts">
            <thead><tr><th>Hồ sơ</th><th>Đơn vị</th><th>Thủ tục</th><th>Tiếp nhận</th><th>Hạn xử lý</th>\
            <th>Thời gian làm việc còn lại</th><th>Mức</th></tr></thead>
            <tbody></tbody>
            </table>
            <p id="empty" hidden>Không có hồ sơ nào có nguy cơ trễ hạn.</p>
            </main>
            <dialog id="timeline" aria-labelledby="timeline-title">
            <h2 id="timeline-title"></h2>
            <p id="timeline-note"></p>
            <pre id="timeline-text"></pre>
            <form method="dialog"><button type="submit">Đóng</button></form>
            </dialog>
            <script src="/board.js"></script>
            </body>
            </html>
            """
    }

    public static let style = """
        :root { --ink: #1b1f24; --muted: #5b6470; --line: #d9dee4; --bg: #f5f7f9;
          --at_risk: #5b4a8a; --warning: #8a6100; --critical: #b34700; --overdue: #b00020; --escalated: #6a0014; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.45 system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--ink);
          background: var(--bg); }
        header { background: #0b3d6b; color: #fff; padding: 12px 16px; }
        header h1 { font-size: 1.15rem; margin: 0 0 4px; }
        .who { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; font-size: .9rem; }
        .who form { margin: 0; }
        button.link { background: none; border: 0; color: #cfe3ff; text-decoration: underline; padding: 0;
          font: inherit; cursor: pointer; }
        #status { margin: 4px 0 0; font-size: .85rem; color: #cfe3ff; }
        #status[data-state="live"]::before { content: "● "; color: #7CFC9A; }
        #status[data-state="lost"] { color: #ffd0d0; }
        main { padding: 12px 16px; max-width: 1800px; margin: 0 auto; }
        #units { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 10px; }
        .unit { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
        .unit h2 { font-size: 1rem; margin: 0 0 6px; }
        .unit dl { display: grid; grid-template-columns: 1fr auto; gap: 2px 12px; margin: 0; font-size: .9rem; }
        .unit dd { margin: 0; font-weight: 600; text-align: right; }
        .unit .risk { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 6px; }
        .chip { border-radius: 999px; padding: 1px 8px; font-size: .8rem; color: #fff; white-space: nowrap; }
        .chip.at_risk { background: var(--at_risk); } .chip.warning { background: var(--warning); } .chip.critical { background: var(--critical); }
        .chip.overdue { background: var(--overdue); } .chip.escalated { background: var(--escalated); }
        .filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin: 14px 0 8px; }
        select { font: inherit; padding: 4px 6px; max-width: 100%; }
        #count { color: var(--muted); font-size: .9rem; }
        table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
        th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: #eef2f6; font-size: .85rem; }
        tbody tr { cursor: pointer; }
        tbody tr:hover, tbody tr:focus { background: #f0f6ff; outline: none; }
        td.left { font-weight: 600; white-space: nowrap; }
        td.left.late { color: var(--overdue); }
        .code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9rem; word-break: break-all; }
        .muted { color: var(--muted); font-size: .85rem; }
        dialog { width: min(900px, 96vw); border: 1px solid var(--line); border-radius: 8px; }
        dialog pre { white-space: pre-wrap; font-size: .8rem; max-height: 60vh; overflow: auto; background: var(--bg);
          padding: 8px; }
        body.login main { max-width: 420px; margin: 8vh auto; background: #fff; border: 1px solid var(--line);
          border-radius: 8px; padding: 20px; }
        body.login h1 { font-size: 1.2rem; margin-top: 0; }
        body.login label { display: block; margin-top: 12px; font-weight: 600; }
        body.login input { width: 100%; font: inherit; padding: 8px; margin-top: 4px; }
        body.login button { margin-top: 16px; width: 100%; font: inherit; padding: 10px; background: #0b3d6b; color: #fff;
          border: 0; border-radius: 6px; }
        .error { color: var(--overdue); font-weight: 600; }
        @media (max-width: 720px) {
          main { padding: 10px; }
          table, thead, tbody, tr, td { display: block; width: 100%; }
          thead { display: none; }
          table { border: 0; background: none; }
          tbody tr { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin-bottom: 8px;
            padding: 6px 10px; }
          td { border: 0; padding: 2px 0; }
          td::before { content: attr(data-label) ": "; color: var(--muted); font-size: .8rem; }
          td.dossier::before, td.level::before { content: ""; }
          td.level { margin-top: 4px; }
        }
        """

    public static let script = #"""
        'use strict';
        (function () {
          const LEVELS = ['escalated', 'overdue', 'critical', 'warning', 'at_risk'];
          const units = new Map();     // code -> unit summary from the last snapshot
          const entries = new Map();   // dossier -> entry
          const $ = (id) => document.getElementById(id);
          const status = (text, state) => { const s = $('status'); s.textContent = text; s.dataset.state = state; };
          const levelName = {};
          for (const o of $('filter-level').options) if (o.value) levelName[o.value] = o.textContent;

          function timeLeft(m) {
            if (m === null || m === undefined) return 'không có hạn';
            if (m === 0) return 'đến hạn';
            const a = Math.abs(m);
            const amount = a >= 60 ? Math.floor(a / 60) + ' giờ' + (a % 60 ? ' ' + (a % 60) + ' phút' : '') : a + ' phút';
            return (m > 0 ? 'còn ' : 'quá hạn ') + amount;
          }
          function el(tag, attrs, text) {
            const e = document.createElement(tag);
            for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
            if (text !== undefined && text !== null) e.textContent = text;
            return e;
          }
          function load(snapshot) {
            units.clear();
            for (const u of snapshot.units) units.set(u.code, u);
            entries.clear();
            for (const e of snapshot.entries) entries.set(e.dossier, e);
            render();
          }
          function renderUnits() {
            const counts = new Map();
            for (const e of entries.values()) {
              if (!counts.has(e.unit)) counts.set(e.unit, { name: e.unitName, levels: {} });
              const c = counts.get(e.unit);
              c.levels[e.level] = (c.levels[e.level] || 0) + 1;
            }
            const codes = new Set([...units.keys(), ...counts.keys()]);
            const total = (code) => Object.values((counts.get(code) || { levels: {} }).levels).reduce((a, b) => a + b, 0);
            const ordered = [...codes].sort((a, b) => total(b) - total(a) || a.localeCompare(b));
            const box = $('units');
            box.replaceChildren();
            const select = $('filter-unit');
            const chosen = select.value;
            select.replaceChildren(el('option', { value: '' }, 'Tất cả đơn vị'));
            for (const code of ordered) {
              const u = units.get(code) || { code, name: counts.get(code).name, receivedToday: null, openToday: null,
                resolvedOnTimeToday: null };
              const card = el('article', { class: 'unit', 'data-unit': code });
              card.append(el('h2', {}, u.name));
              const dl = el('dl');
              const fig = (v) => (v === null || v === undefined ? '—' : v.toLocaleString('vi-VN'));
              dl.append(el('dt', {}, 'Tiếp nhận trong ngày'), el('dd', {}, fig(u.receivedToday)));
              dl.append(el('dt', {}, 'Chưa giải quyết'), el('dd', {}, fig(u.openToday)));
              dl.append(el('dt', {}, 'Đã giải quyết đúng hạn'), el('dd', {}, fig(u.resolvedOnTimeToday)));
              card.append(dl);
              const risk = el('div', { class: 'risk' });
              const levels = (counts.get(code) || { levels: {} }).levels;
              let any = false;
              for (const l of LEVELS) if (levels[l]) { any = true; risk.append(el('span', { class: 'chip ' + l }, levelName[l] + ': ' + levels[l])); }
              if (!any) risk.append(el('span', { class: 'muted' }, 'Không có hồ sơ có nguy cơ'));
              card.append(risk);
              box.append(card);
              select.append(el('option', { value: code }, u.name));
            }
            select.value = codes.has(chosen) ? chosen : '';
          }
          function renderList() {
            const unit = $('filter-unit').value;
            const level = $('filter-level').value;
            const rows = [...entries.values()].filter((e) => (!unit || e.unit === unit) && (!level || e.level === level));
            rows.sort((a, b) => (a.minutesLeft ?? 1e12) - (b.minutesLeft ?? 1e12) || a.dossier.localeCompare(b.dossier));
            const body = document.querySelector('#alerts tbody');
            body.replaceChildren();
            for (const e of rows) {
              const tr = el('tr', { 'data-dossier': e.dossier, 'data-level': e.level, tabindex: '0' });
              const cell = (cls, label, text) => el('td', { class: cls, 'data-label': label }, text);
              const code = cell('dossier', 'Hồ sơ');
              code.append(el('span', { class: 'code' }, e.dossier));
              tr.append(code);
              tr.append(cell('unit-name', 'Đơn vị', e.unitName));
              const proc = cell('procedure', 'Thủ tục', e.procedureName || e.procedure);
              if (e.procedureName) proc.append(el('div', { class: 'muted code' }, e.procedure));
              tr.append(proc);
              tr.append(cell('received', 'Tiếp nhận', e.receivedAt || '—'));
              tr.append(cell('due', 'Hạn xử lý', e.due || '—'));
              tr.append(cell('left' + (e.minutesLeft !== null && e.minutesLeft < 0 ? ' late' : ''), 'Còn lại', timeLeft(e.minutesLeft)));
              const lv = cell('level', 'Mức');
              lv.append(el('span', { class: 'chip ' + e.level }, e.levelName));
              if (e.predictedAt) lv.append(el('div', { class: 'muted' }, 'dự kiến xong ' + e.predictedAt + ', ' + e.queueAhead + ' hồ sơ xếp trước'));
              tr.append(lv);
              tr.addEventListener('click', () => explain(e.dossier));
              tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') explain(e.dossier); });
              body.append(tr);
            }
            $('empty').hidden = rows.length > 0;
            $('count').textContent = rows.length + ' hồ sơ';
          }
          function render() { renderUnits(); renderList(); }
          // A burst of changes is drawn once.
          let drawing = null;
          function scheduleRender() { if (!drawing) drawing = setTimeout(() => { drawing = null; render(); }, 100); }

          async function explain(dossier) {
            const d = $('timeline');
            $('timeline-title').textContent = 'Hồ sơ ' + dossier;
            $('timeline-note').textContent = 'Đang tải…';
            $('timeline-text').textContent = '';
            if (!d.open) d.showModal();
            const r = await fetch('/api/dossiers/' + encodeURIComponent(dossier), { credentials: 'same-origin' });
            if (r.status === 401) { location.href = '/login'; return; }
            if (r.status === 404) { $('timeline-note').textContent = 'Không tìm thấy hồ sơ trong các đơn vị của bạn.'; return; }
            const t = await r.json();
            $('timeline-note').textContent = t.note || (t.open ? 'Hồ sơ đang có nguy cơ trễ hạn.' : 'Hồ sơ đã được giải quyết.');
            $('timeline-text').textContent = t.timeline || t.alerts.map((a) => a.firedAt + '  ' + a.level).join('\n');
          }

          async function refresh() {
            try {
              const r = await fetch('/api/board', { credentials: 'same-origin' });
              if (r.status === 401) { location.href = '/login'; return; }
              if (r.ok) load(await r.json());
            } catch (e) { /* the stream's status line says the connection is lost */ }
          }

          function connect() {
            const source = new EventSource('/api/events');
            source.addEventListener('open', () => status('Đang cập nhật trực tiếp', 'live'));
            source.addEventListener('error', () => status('Mất kết nối, đang kết nối lại…', 'lost'));
            source.addEventListener('snapshot', (ev) => load(JSON.parse(ev.data)));
            source.addEventListener('upsert', (ev) => { const e = JSON.parse(ev.data); entries.set(e.dossier, e); scheduleRender(); });
            source.addEventListener('remove', (ev) => { const e = JSON.parse(ev.data); entries.delete(e.dossier); scheduleRender(); });
            source.addEventListener('logout', () => { source.close(); location.href = '/login'; });
          }
          $('filter-unit').addEventListener('change', renderList);
          $('filter-level').addEventListener('change', renderList);
          connect();
          setInterval(refresh, 60000);
        })();
        """#
}
