#!/usr/bin/env python3
"""Validate a SameDay configuration folder against docs/rules.md, section 7.

Usage: check-config.py [--today YYYY-MM-DD] [DIR]        (default: hcmc-2022 next to this script)

Checks units.csv, catalog.csv, calendars.json and (if present) alerting.json:
headers, encoding (UTF-8, no BOM, LF, minimal RFC 4180 quoting), blocks, parents,
calendar ids, sessions (HH:MM-HH:MM, ascending, non-overlapping), cut-offs, SLA and
scope formats, and the JSON shapes. Every error names the file, the line or JSON
path, and the field. Warnings (CSV text not in Unicode NFC, a role with no block
fallback, a calendar whose listed holidays end within 45 days of today or
before it) are printed but do not fail the check.
units.csv and catalog.csv may end with a `source` column: a citation, or
`unconfirmed` (believed real, no source seen) or `illustrative` (made up for
an example), each optionally followed by ": why". The rows that are not cited
are listed with their reason, and counted on the last line.
Exit status: 0 when clean, 1 on any error, 2 on bad usage.
Python 3 standard library only.
"""
import csv
import datetime
import io
import json
import os
import re
import sys
import unicodedata

UNITS_HEADER = ["code", "name", "block", "parent", "calendar"]
CATALOG_HEADER = ["procedure", "name", "field", "sla", "cutoff", "scope"]
BLOCKS = ("district", "commune", "department", "vertical")
SOURCE = "source"
MAX_SOURCE = 300  # bytes, as the Swift loader (Provenance.maxCellBytes)
UNCITED_RE = re.compile(r"^(unconfirmed|illustrative)(?::\s*(.*))?$", re.S)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLES = ("specialist", "office_head", "unit_head", "reception", "city_supervisor")
LEVELS = ("at_risk", "warning", "critical", "overdue", "escalated", "cleared", "resolved_late", "source_silent")
SLA_CLASSES = ("same-day", "days", "hours")
THRESHOLD_LEVELS = ("warning", "critical", "escalated")
THRESHOLD_KINDS = ("minutesBefore", "minutesAfter", "percentUsed")

SLA_RE = re.compile(r"^(same-day|hours:[1-9][0-9]*|days:[1-9][0-9]*)$")
TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
SESSION_RE = re.compile(r"^(\d{2}:\d{2})-(\d{2}:\d{2})$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Report:
    def __init__(self):
        self.errors = []
        self.warnings = []
        self.uncited = []  # (file, line, unconfirmed | illustrative, why)

    def error(self, file, where, field, msg):
        self.errors.append(f"{file}:{where}: {field}: {msg}")

    def warn(self, file, where, field, msg):
        self.warnings.append(f"{file}:{where}: {field}: {msg}")


def minutes(hhmm):
    """'HH:MM' -> minutes after midnight, or None if malformed. '24:00' is allowed as an end."""
    if hhmm == "24:00":
        return 24 * 60
    m = TIME_RE.match(hhmm)
    return int(m.group(1)) * 60 + int(m.group(2)) if m else None


def valid_date(s):
    if not isinstance(s, str) or not DATE_RE.match(s):
        return False
    try:
        datetime.date.fromisoformat(s)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- CSV

def read_csv(path, name, header, rep):
    """Return [(line_no, row_dict)] or None when the file cannot be used at all."""
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        rep.error(name, 0, "file", f"cannot read: {e}")
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        rep.error(name, 1, "encoding", "starts with a UTF-8 byte-order mark; configuration CSV files have none")
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        rep.error(name, raw[: e.start].count(b"\n") + 1, "encoding", f"not valid UTF-8 ({e.reason})")
        return None
    if "\r" in text:
        rep.error(name, text[: text.index("\r")].count("\n") + 1, "line endings", "CR found; use LF line endings only")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n"):
        rep.error(name, text.count("\n") + 1, "line endings", "last line does not end with LF")
        text += "\n"
    if not text:
        rep.error(name, 1, "header", f"empty file; expected header {','.join(header)}")
        return None

    # Parse record by record so that line numbers stay right even for quoted newlines.
    lines = text.split("\n")[:-1]
    rows = []
    i = 0
    while i < len(lines):
        start = i
        chunk = lines[i]
        # a record continues while its quotes are unbalanced
        while chunk.count('"') % 2 == 1 and i + 1 < len(lines):
            i += 1
            chunk += "\n" + lines[i]
        i += 1
        if chunk == "":
            rep.error(name, start + 1, "record", "empty line")
            continue
        try:
            parsed = next(csv.reader([chunk], strict=True))
        except csv.Error as e:
            rep.error(name, start + 1, "record", f"malformed CSV: {e}")
            continue
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerow(parsed)
        if buf.getvalue()[:-1] != chunk:
            rep.error(name, start + 1, "quoting",
                      "fields must be quoted only when needed (RFC 4180); expected "
                      + repr(buf.getvalue()[:-1]))
        rows.append((start + 1, parsed))

    if not rows:
        rep.error(name, 1, "header", f"missing; expected {','.join(header)}")
        return None
    line_no, got = rows[0]
    if got == header + [SOURCE]:
        header = got
    elif got != header:
        rep.error(name, line_no, "header",
                  f"expected {','.join(header)!r} (optionally with ',{SOURCE}'), got {','.join(got)!r}")
        return None
    out = []
    for line_no, parsed in rows[1:]:
        if len(parsed) != len(header):
            rep.error(name, line_no, "record", f"{len(parsed)} fields, expected {len(header)}")
            continue
        row = dict(zip(header, parsed))
        if SOURCE in row:
            check_source(row[SOURCE], name, line_no, rep)
        for k, v in row.items():
            if v != v.strip():
                rep.error(name, line_no, k, f"leading or trailing white space in {v!r}")
            if not unicodedata.is_normalized("NFC", v):
                rep.warn(name, line_no, k, "not in Unicode NFC (precomposed) form; matching and sorting may differ")
        out.append((line_no, row))
    return out


def check_source(cell, name, line_no, rep):
    """A `source` cell: a citation, or unconfirmed/illustrative with an optional reason (listed in the summary)."""
    if not cell:
        rep.error(name, line_no, SOURCE, "empty: give a citation, or unconfirmed or illustrative (each may add ': why')")
        return
    if len(cell.encode("utf-8")) > MAX_SOURCE:
        rep.error(name, line_no, SOURCE, f"longer than {MAX_SOURCE} bytes")
        return
    m = UNCITED_RE.match(cell)
    if m:
        rep.uncited.append((name, line_no, m.group(1), (m.group(2) or "").strip()))


def check_units(path, calendar_ids, rep):
    name = "units.csv"
    rows = read_csv(path, name, UNITS_HEADER, rep)
    if rows is None:
        return {}
    units = {}
    for line_no, row in rows:
        code = row["code"]
        if not code:
            rep.error(name, line_no, "code", "empty")
        elif re.search(r"\s", code) or len(code) > 64:
            rep.error(name, line_no, "code", f"{code!r}: no white space, at most 64 characters")
        elif code in units:
            rep.error(name, line_no, "code", f"{code!r} already defined on line {units[code][0]}")
        else:
            units[code] = (line_no, row)
        if not row["name"]:
            rep.error(name, line_no, "name", "empty")
        if row["block"] not in BLOCKS:
            rep.error(name, line_no, "block", f"{row['block']!r} is not one of {', '.join(BLOCKS)}")
        if calendar_ids is not None and row["calendar"] not in calendar_ids:
            rep.error(name, line_no, "calendar", f"{row['calendar']!r} is not an id in calendars.json")
    for code, (line_no, row) in units.items():
        parent = row["parent"]
        if parent == "":
            continue
        if parent == code:
            rep.error(name, line_no, "parent", "a unit cannot be its own parent")
        elif parent not in units:
            rep.error(name, line_no, "parent", f"{parent!r} is neither empty nor a code in this file")
        else:
            seen, p = {code}, parent
            while p and p in units:
                if p in seen:
                    rep.error(name, line_no, "parent", f"cycle through {p!r}")
                    break
                seen.add(p)
                p = units[p][1]["parent"]
    return {c: r for c, (_, r) in units.items()}


def check_catalog(path, units, rep):
    name = "catalog.csv"
    rows = read_csv(path, name, CATALOG_HEADER, rep)
    if rows is None:
        return set()
    seen = {}  # (procedure, scope) -> line: a code may have a city entry and entries of units' own
    for line_no, row in rows:
        proc = row["procedure"]
        key = (proc, row["scope"])
        if not proc:
            rep.error(name, line_no, "procedure", "empty")
        elif re.search(r"\s", proc) or len(proc) > 64:
            rep.error(name, line_no, "procedure", f"{proc!r}: no white space, at most 64 characters")
        elif key in seen:
            rep.error(name, line_no, "procedure",
                      f"{proc!r} already listed for scope {row['scope']!r} on line {seen[key]}")
        else:
            seen[key] = line_no
        if not row["name"]:
            rep.error(name, line_no, "name", "empty")
        if not row["field"]:
            rep.error(name, line_no, "field", "empty")
        sla = row["sla"]
        if not SLA_RE.match(sla):
            rep.error(name, line_no, "sla", f"{sla!r} is not same-day, hours:N or days:N (N >= 1)")
        cutoff = row["cutoff"]
        if cutoff:
            if not TIME_RE.match(cutoff):
                rep.error(name, line_no, "cutoff", f"{cutoff!r} is not HH:MM (00:00-23:59) or empty")
            elif sla != "same-day":
                rep.error(name, line_no, "cutoff", f"a cut-off only applies to same-day procedures, sla is {sla!r}")
        scope = row["scope"]
        if scope != "city" and scope not in units:
            rep.error(name, line_no, "scope", f"{scope!r} is neither 'city' nor a unit code from units.csv")
    return {proc for proc, _ in seen}


# ---------------------------------------------------------------- JSON

def load_json(path, name, rep):
    def no_dupes(pairs):
        obj = {}
        for k, v in pairs:
            if k in obj:
                raise ValueError(f"duplicate key {k!r}")
            obj[k] = v
        return obj
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        rep.error(name, "$", "file", f"cannot read: {e}")
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        rep.error(name, "$", "encoding", "starts with a UTF-8 byte-order mark")
        raw = raw[3:]
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=no_dupes)
    except UnicodeDecodeError as e:
        rep.error(name, "$", "encoding", f"not valid UTF-8 ({e.reason})")
    except json.JSONDecodeError as e:
        rep.error(name, f"line {e.lineno} column {e.colno}", "json", e.msg)
    except ValueError as e:
        rep.error(name, "$", "json", str(e))
    return None


def expect_keys(obj, path, name, rep, required=(), optional=()):
    """obj must be a dict with all required keys and no key outside required+optional."""
    if not isinstance(obj, dict):
        rep.error(name, path, path.rsplit(".", 1)[-1], f"must be an object, got {type(obj).__name__}")
        return False
    for k in required:
        if k not in obj:
            rep.error(name, f"{path}.{k}", k, "missing")
    for k in obj:
        if k not in required and k not in optional:
            rep.error(name, f"{path}.{k}", k, "unknown key")
    return True


def check_session(s, sp, name, rep, day_extra):
    """One SESSION: "HH:MM-HH:MM" or an object (docs/rules.md §7.4). Returns (start, end, extra) or None."""
    if isinstance(s, dict):
        if not expect_keys(s, sp, name, rep, required=("time",),
                           optional=("extra", "procedures", "cutoff", "from", "until")):
            return None
        extra = s.get("extra", False)
        if not isinstance(extra, bool):
            rep.error(name, f"{sp}.extra", "extra", f"{extra!r} must be true or false")
            extra = False
        extra = extra or day_extra
        text = s.get("time")
        where = f"{sp}.time"
    else:
        extra, text, where = day_extra, s, sp
    m = SESSION_RE.match(text) if isinstance(text, str) else None
    if not m:
        rep.error(name, where, "sessions", f"{text!r} is not HH:MM-HH:MM")
        return None
    a, b = minutes(m.group(1)), minutes(m.group(2))
    if a is None or b is None or a == 24 * 60:
        rep.error(name, where, "sessions", f"{text!r} has an invalid time")
        return None
    if a >= b:
        rep.error(name, where, "sessions", f"{text!r} must end after it starts")
        return None
    if isinstance(s, dict):
        procs = s.get("procedures")
        if procs is not None:
            if not extra:
                rep.error(name, f"{sp}.procedures", "procedures", "only an extra session may name the procedures it serves")
            elif not isinstance(procs, list) or not procs or not all(isinstance(x, str) and x and x != "field:" for x in procs):
                rep.error(name, f"{sp}.procedures", "procedures",
                          "must be a non-empty list of procedure codes or field:<lĩnh vực>")
        c = s.get("cutoff")
        if c is not None:
            cm = minutes(c) if isinstance(c, str) and TIME_RE.match(c) else None
            if not extra:
                rep.error(name, f"{sp}.cutoff", "cutoff", "only an extra session has a cut-off of its own")
            elif cm is None:
                rep.error(name, f"{sp}.cutoff", "cutoff", f"{c!r} is not HH:MM")
            elif not a <= cm <= b:
                rep.error(name, f"{sp}.cutoff", "cutoff", f"{c} must fall inside the session {text}")
        dates = {}
        for k in ("from", "until"):
            v = s.get(k)
            if v is not None:
                if not isinstance(v, str) or not valid_date(v):
                    rep.error(name, f"{sp}.{k}", k, f"{v!r} is not a YYYY-MM-DD date")
                else:
                    dates[k] = v
        if "from" in dates and "until" in dates and dates["until"] < dates["from"]:
            rep.error(name, f"{sp}.until", "until", "the session ends (until) before it starts (from)")
    return a, b, extra


def check_day(day, path, name, rep):
    """A DAY; returns True when it has a regular (not extra) session."""
    if day is None:
        return False
    if not expect_keys(day, path, name, rep, required=("sessions",), optional=("cutoff", "extra")):
        return False
    day_extra = day.get("extra", False)
    if not isinstance(day_extra, bool):
        rep.error(name, f"{path}.extra", "extra", f"{day_extra!r} must be true or false")
        day_extra = False
    sessions = day.get("sessions")
    if not isinstance(sessions, list) or not sessions:
        rep.error(name, f"{path}.sessions", "sessions", "must be a non-empty list (use null for a day without work)")
        return False
    prev_end = None
    first_start = last_end = None
    bad = False
    regular = False
    for i, s in enumerate(sessions):
        sp = f"{path}.sessions[{i}]"
        got = check_session(s, sp, name, rep, day_extra)
        if got is None:
            bad = True
            continue
        a, b, extra = got
        regular = regular or not extra
        if prev_end is not None and a < prev_end:
            rep.error(name, sp, "sessions", f"{s!r} overlaps or is not after the previous session")
            bad = True
        prev_end = b
        first_start = a if first_start is None else first_start
        last_end = b
    if "cutoff" in day:
        c = day["cutoff"]
        cm = minutes(c) if isinstance(c, str) and TIME_RE.match(c) else None
        if cm is None:
            rep.error(name, f"{path}.cutoff", "cutoff", f"{c!r} is not HH:MM")
        elif not bad and first_start is not None and not (first_start <= cm <= last_end):
            rep.error(name, f"{path}.cutoff", "cutoff", f"{c} is outside the day's sessions")
    return regular


def check_calendars(path, rep):
    name = "calendars.json"
    doc = load_json(path, name, rep)
    if doc is None:
        return None
    if not expect_keys(doc, "$", name, rep, required=("calendars",)):
        return None
    cals = doc.get("calendars")
    if not isinstance(cals, list) or not cals:
        rep.error(name, "$.calendars", "calendars", "must be a non-empty list")
        return None
    by_id = {}
    for i, cal in enumerate(cals):
        p = f"$.calendars[{i}]"
        if not expect_keys(cal, p, name, rep, required=("id", "days"),
                           optional=("base", "holidays", "holidaysThrough", "dates")):
            continue
        cid = cal.get("id")
        if not isinstance(cid, str) or not cid or re.search(r"\s", cid):
            rep.error(name, f"{p}.id", "id", f"{cid!r} must be a non-empty string without white space")
            continue
        if cid in by_id:
            rep.error(name, f"{p}.id", "id", f"{cid!r} is defined twice")
            continue
        by_id[cid] = (p, cal)
        days = cal.get("days")
        if isinstance(days, dict):
            for k, d in days.items():
                if k not in WEEKDAYS:
                    rep.error(name, f"{p}.days.{k}", "days", f"{k!r} is not one of {', '.join(WEEKDAYS)}")
                else:
                    check_day(d, f"{p}.days.{k}", name, rep)
            if "base" not in cal:
                for k in WEEKDAYS:
                    if k not in days:
                        rep.error(name, f"{p}.days.{k}", "days", "missing (a calendar without base defines all seven days)")
        else:
            rep.error(name, f"{p}.days", "days", "must be an object")
        hol = cal.get("holidays", [])
        if not isinstance(hol, list):
            rep.error(name, f"{p}.holidays", "holidays", "must be a list")
        else:
            seen = set()
            for j, h in enumerate(hol):
                if not valid_date(h):
                    rep.error(name, f"{p}.holidays[{j}]", "holidays", f"{h!r} is not a date YYYY-MM-DD")
                elif h in seen:
                    rep.error(name, f"{p}.holidays[{j}]", "holidays", f"{h} listed twice")
                seen.add(h)
        if "holidaysThrough" in cal:
            ht = cal["holidaysThrough"]
            if not valid_date(ht):
                rep.error(name, f"{p}.holidaysThrough", "holidaysThrough", f"{ht!r} is not a date YYYY-MM-DD")
            elif isinstance(hol, list) and any(valid_date(h) and h > ht for h in hol):
                rep.error(name, f"{p}.holidaysThrough", "holidaysThrough",
                          f"{ht} is before the holiday {max(h for h in hol if valid_date(h))} listed in this calendar")
        dates = cal.get("dates", {})
        if not isinstance(dates, dict):
            rep.error(name, f"{p}.dates", "dates", "must be an object")
        else:
            for k, d in dates.items():
                if not valid_date(k):
                    rep.error(name, f"{p}.dates.{k}", "dates", f"{k!r} is not a date YYYY-MM-DD")
                check_day(d, f"{p}.dates.{k}", name, rep)
    for cid, (p, cal) in by_id.items():
        if "base" not in cal:
            continue
        base = cal["base"]
        if base not in by_id:
            rep.error(name, f"{p}.base", "base", f"{base!r} is not a calendar id")
            continue
        seen, b = {cid}, base
        while b is not None:
            if b in seen:
                rep.error(name, f"{p}.base", "base", f"cycle through {b!r}")
                break
            seen.add(b)
            b = by_id[b][1].get("base") if b in by_id else None
    return set(by_id)


def holidays_through(cals):
    """calendar id -> the last day its holidays cover (the nearest holidaysThrough up its base chain, else the
    31 December of its last holiday's year), or None when it lists no holiday; as the Swift loader reads it."""
    by_id = {c.get("id"): c for c in cals if isinstance(c, dict)}
    out = {}
    for cid, cal in by_id.items():
        chain, seen, c = [], set(), cal
        while isinstance(c, dict) and c.get("id") not in seen:
            seen.add(c.get("id"))
            chain.append(c)
            c = by_id.get(c.get("base"))
        through = next((c["holidaysThrough"] for c in chain if valid_date(c.get("holidaysThrough"))), None)
        if through is None:
            days = [h for c in chain for h in c.get("holidays", []) if valid_date(h)]
            through = f"{max(days)[:4]}-12-31" if days else None
        out[cid] = through
    return out


def check_holiday_coverage(path, used, today, rep, warn_days=45):
    """Warn about every calendar a unit uses whose listed holidays end within `warn_days` of `today` or before it:
    past that day the worker counts every weekday as a working day (and says so in its log and metrics)."""
    name = "calendars.json"
    try:
        with open(path, encoding="utf-8") as f:
            cals = json.load(f).get("calendars", [])
    except (OSError, ValueError, AttributeError):
        return {}
    through = holidays_through(cals)
    for cid in sorted(c for c in used if c in through):
        t = through[cid]
        if t is None:
            rep.warn(name, cid, "holidays", "no holiday listed: every weekday counts as a working day")
            continue
        left = (datetime.date.fromisoformat(t) - today).days
        if left < 0:
            rep.warn(name, cid, "holidaysThrough",
                     f"holidays listed through {t}, {-left} days before {today}: dates after it count every weekday "
                     "as a working day; add the holidays and swapped days of the years since")
        elif left <= warn_days:
            rep.warn(name, cid, "holidaysThrough",
                     f"holidays listed through {t}, {left} days after {today}: add next year's holidays and swapped days")
    return through


def check_alerting(path, units, procedures, rep):
    name = "alerting.json"
    doc = load_json(path, name, rep)
    if doc is None:
        return
    if not expect_keys(doc, "$", name, rep,
                       required=("thresholds", "procedures", "defaultSla", "silence", "levels", "recipients"),
                       optional=("staleAfterDays", "feesPauseTheClock", "extensions", "atRisk")):
        return

    def check_thresholds(obj, p):
        if not expect_keys(obj, p, name, rep, optional=THRESHOLD_LEVELS):
            return
        for lvl, t in obj.items():
            if lvl not in THRESHOLD_LEVELS:
                continue
            tp = f"{p}.{lvl}"
            if not isinstance(t, dict) or len(t) != 1:
                rep.error(name, tp, lvl, f"must be an object with exactly one of {', '.join(THRESHOLD_KINDS)}")
                continue
            (kind, val), = t.items()
            allowed = ("minutesAfter",) if lvl == "escalated" else ("minutesBefore", "percentUsed")
            if kind not in allowed:
                rep.error(name, f"{tp}.{kind}", kind, f"not allowed for {lvl}; use {' or '.join(allowed)}")
            elif not isinstance(val, int) or isinstance(val, bool) or val < 0:
                rep.error(name, f"{tp}.{kind}", kind, f"{val!r} must be an integer >= 0")
            elif kind == "percentUsed" and not 0 < val <= 100:
                rep.error(name, f"{tp}.{kind}", kind, f"{val} must be within 1..100")
        # Revision 2: the levels always come in order; rules of the same kind can be compared here.
        w, c = obj.get("warning"), obj.get("critical")
        if isinstance(w, dict) and isinstance(c, dict) and len(w) == 1 and len(c) == 1:
            (wk, wv), = w.items()
            (ck, cv), = c.items()
            if wk == ck == "minutesBefore" and isinstance(wv, int) and isinstance(cv, int) and wv < cv:
                rep.error(name, f"{p}.warning", "warning", f"warning ({wv} minutes before) would come after critical ({cv})")
            if wk == ck == "percentUsed" and isinstance(wv, int) and isinstance(cv, int) and wv > cv:
                rep.error(name, f"{p}.warning", "warning", f"warning ({wv} % used) would come after critical ({cv} %)")

    th = doc.get("thresholds")
    if expect_keys(th, "$.thresholds", name, rep, optional=SLA_CLASSES):
        for cls, obj in th.items():
            if cls in SLA_CLASSES:
                check_thresholds(obj, f"$.thresholds.{cls}")

    procs = doc.get("procedures")
    if not isinstance(procs, dict):
        rep.error(name, "$.procedures", "procedures", "must be an object")
    else:
        for code, obj in procs.items():
            if code not in procedures:
                rep.error(name, f"$.procedures.{code}", "procedures", f"{code!r} is not a procedure in catalog.csv")
            check_thresholds(obj, f"$.procedures.{code}")

    sla = doc.get("defaultSla")
    if "defaultSla" in doc and (not isinstance(sla, str) or not SLA_RE.match(sla)):
        rep.error(name, "$.defaultSla", "defaultSla", f"{sla!r} is not same-day, hours:N or days:N")

    if "feesPauseTheClock" in doc and not isinstance(doc["feesPauseTheClock"], bool):
        rep.error(name, "$.feesPauseTheClock", "feesPauseTheClock", f"{doc['feesPauseTheClock']!r} must be true or false")
    if "extensions" in doc:
        ext = doc["extensions"]
        if expect_keys(ext, "$.extensions", name, rep, optional=("fields", "maxWorkingDays")):
            fields = ext.get("fields", [])
            if not isinstance(fields, list) or not all(isinstance(f, str) and 0 < len(f.encode()) <= 256 for f in fields):
                rep.error(name, "$.extensions.fields", "fields", "must be a list of field names (1 to 256 bytes)")
            days = ext.get("maxWorkingDays", 2)
            if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 30:
                rep.error(name, "$.extensions.maxWorkingDays", "maxWorkingDays", f"{days!r} must be 1…30 working days")
    if "atRisk" in doc:
        # The queue forecast (docs/rules.md §5.6): which blocks it watches, and the confidence it flags at.
        ar = doc["atRisk"]
        if expect_keys(ar, "$.atRisk", name, rep, optional=("blocks", "confidence")):
            blocks = ar.get("blocks", list(BLOCKS))
            if not isinstance(blocks, list) or not all(b in BLOCKS for b in blocks):
                rep.error(name, "$.atRisk.blocks", "blocks", f"must be a list of blocks ({', '.join(BLOCKS)})")
            conf = ar.get("confidence", 0.7)
            if not isinstance(conf, (int, float)) or isinstance(conf, bool) or not 0.05 <= conf <= 0.95:
                rep.error(name, "$.atRisk.confidence", "confidence", f"{conf!r} must be a number from 0.05 to 0.95")
    if "staleAfterDays" in doc:
        st = doc["staleAfterDays"]
        if not isinstance(st, int) or isinstance(st, bool) or not 1 <= st <= 3660:
            rep.error(name, "$.staleAfterDays", "staleAfterDays", f"{st!r} must be an integer within 1..3660")

    def positive(v):
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    sil = doc.get("silence")
    if expect_keys(sil, "$.silence", name, rep, required=("workingMinutes",), optional=("blocks", "units")):
        wm = sil.get("workingMinutes")
        if "workingMinutes" in sil and not positive(wm):
            rep.error(name, "$.silence.workingMinutes", "workingMinutes", f"{wm!r} must be an integer > 0")
        # Overrides: per block, and per unit (which wins over its block's); working minutes > 0.
        sb = sil.get("blocks", {})
        if expect_keys(sb, "$.silence.blocks", name, rep, optional=BLOCKS):
            for blk, v in sb.items():
                if blk in BLOCKS and not positive(v):
                    rep.error(name, f"$.silence.blocks.{blk}", blk, f"{v!r} must be an integer > 0")
        su = sil.get("units", {})
        if not isinstance(su, dict):
            rep.error(name, "$.silence.units", "units", "must be an object")
        else:
            for code, v in su.items():
                if code not in units:
                    rep.error(name, f"$.silence.units.{code}", code, f"{code!r} is not a unit code in units.csv")
                elif not positive(v):
                    rep.error(name, f"$.silence.units.{code}", code, f"{v!r} must be an integer > 0")

    levels = doc.get("levels")
    # at_risk came later: a file written before it takes the default roles (specialist, office_head).
    if expect_keys(levels, "$.levels", name, rep, required=LEVELS[1:], optional=("at_risk",)):
        for lvl, roles in levels.items():
            lp = f"$.levels.{lvl}"
            if not isinstance(roles, list) or not roles:
                rep.error(name, lp, lvl, "must be a non-empty list of roles")
                continue
            for j, r in enumerate(roles):
                if r not in ROLES:
                    rep.error(name, f"{lp}[{j}]", lvl, f"{r!r} is not one of {', '.join(ROLES)}")
            if len(set(roles)) != len(roles):
                rep.error(name, lp, lvl, "a role is listed twice")

    def check_people(obj, p):
        if not expect_keys(obj, p, name, rep, optional=ROLES):
            return
        for role, people in obj.items():
            rp = f"{p}.{role}"
            if role not in ROLES:
                continue
            if not isinstance(people, list) or not people:
                rep.error(name, rp, role, "must be a non-empty list of addresses")
                continue
            for j, a in enumerate(people):
                if not isinstance(a, str) or not EMAIL_RE.match(a):
                    rep.error(name, f"{rp}[{j}]", role, f"{a!r} is not an e-mail address")

    rec = doc.get("recipients")
    if expect_keys(rec, "$.recipients", name, rep, required=("units", "blocks"), optional=("parentRoles",)):
        pr = rec.get("parentRoles", [])
        if not isinstance(pr, list):
            rep.error(name, "$.recipients.parentRoles", "parentRoles", "must be a list of roles")
        else:
            for j, r in enumerate(pr):
                if r not in ROLES:
                    rep.error(name, f"$.recipients.parentRoles[{j}]", "parentRoles", f"{r!r} is not one of {', '.join(ROLES)}")
        us = rec.get("units", {})
        if isinstance(us, dict):
            for code, obj in us.items():
                if code not in units:
                    rep.error(name, f"$.recipients.units.{code}", "units", f"{code!r} is not a unit code in units.csv")
                check_people(obj, f"$.recipients.units.{code}")
        else:
            rep.error(name, "$.recipients.units", "units", "must be an object")
        bs = rec.get("blocks", {})
        if expect_keys(bs, "$.recipients.blocks", name, rep, optional=BLOCKS):
            for blk, obj in bs.items():
                if blk in BLOCKS:
                    check_people(obj, f"$.recipients.blocks.{blk}")
            # Every role that a level notifies should reach someone for every block.
            if isinstance(levels, dict):
                needed = {r for rs in levels.values() if isinstance(rs, list) for r in rs if r in ROLES}
                # Only blocks the registry has: a map without districts (since 2025) needs no district fallback.
                present = {row.get("block") for row in units.values()}
                for blk in (b for b in BLOCKS if b in present):
                    have = bs.get(blk) if isinstance(bs.get(blk), dict) else {}
                    for r in sorted(needed - set(have)):
                        rep.warn(name, f"$.recipients.blocks.{blk}", r,
                                 "no block fallback: units of this block without their own entry notify nobody in this role")


def uncited_summary(uncited):
    """'; catalog.csv: 2 unconfirmed, 0 illustrative; units.csv: …' for the files that have uncited rows."""
    parts = []
    for file in ("units.csv", "catalog.csv"):
        words = [w for f, _, w, _ in uncited if f == file]
        if words:
            parts.append(f"{file}: {words.count('unconfirmed')} unconfirmed, {words.count('illustrative')} illustrative")
    return "; " + "; ".join(parts) if parts else ""


def main(argv):
    args = argv[1:]
    today = datetime.date.today()
    if len(args) >= 2 and args[0] == "--today":
        if not valid_date(args[1]):
            print(f"--today: {args[1]!r} is not a date YYYY-MM-DD", file=sys.stderr)
            return 2
        today = datetime.date.fromisoformat(args[1])
        args = args[2:]
    if len(args) > 1 or (len(args) == 1 and args[0] in ("-h", "--help")):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    d = args[0] if len(args) == 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "hcmc-2022")
    if not os.path.isdir(d):
        print(f"{d}: not a directory", file=sys.stderr)
        return 2
    rep = Report()
    cal_ids = check_calendars(os.path.join(d, "calendars.json"), rep)
    units = check_units(os.path.join(d, "units.csv"), cal_ids, rep)
    procs = check_catalog(os.path.join(d, "catalog.csv"), units, rep)
    ap = os.path.join(d, "alerting.json")
    if os.path.exists(ap):
        check_alerting(ap, units, procs, rep)
    through = {}
    if cal_ids:
        used = {row["calendar"] for row in units.values()}
        through = check_holiday_coverage(os.path.join(d, "calendars.json"), used, today, rep)
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for e in rep.errors:
        print(f"error: {e}", file=sys.stderr)
    if rep.errors:
        print(f"{d}: {len(rep.errors)} error(s)", file=sys.stderr)
        return 1
    for file, line, word, why in rep.uncited:
        print(f"{word}: {file}:{line}" + (f": {why}" if why else ": no reason given"))
    ends = sorted({t for t in through.values() if t})
    listed = f"; holidays listed through {ends[0]}" if ends else ""
    print(f"{d}: OK ({len(units)} units, {len(procs)} procedures, {len(cal_ids or ())} calendars{listed}"
          f"{uncited_summary(rep.uncited)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
