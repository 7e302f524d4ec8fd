#!/usr/bin/env python3
"""Independent reference for the figures of `sameday report`, counted from a configuration folder and an events
JSONL file by a second path written from docs/rules.md alone (no SameDay code was read or ported).

Implements (docs/rules.md):
  §2.2  catalog scope (the unit's entry, else its parent's, else the city's) and defaultSla / `Ngoài danh mục`;
  §2.3, §7.4  calendars: bases, weekly days, dated days, holidays, extra sessions (same-day only, procedure lists,
        `field:` entries, own cut-offs, from/until), adjacent sessions forming one stretch;
  §2.4  fixed UTC+07:00, whole seconds;
  §1.1, §2.1, §3.5  events of an unknown unit, or of a dossier not the unit's, are refused (dropped);
  §3.3, §3.4  event effects, order (occurredAt, seq with a missing seq first, arrival), per-dossier eventId
        idempotency (first arrival wins), unit/procedure of the first `received`, events after a closure ignored,
        a dossier closed before any `received` never counted;
  §4.1  T0 moved into the next counted session; §4.2 same-day deadlines and the cut-off in force (4 steps);
  §4.3  hours:N / days:N on regular sessions; §4.4 fee pauses (the clock stops; `feesPauseTheClock`);
  §4.5  supplement restart (new episode, new T0); §4.6a lawful extensions (`extended`, `extensions` in
        alerting.json: fields, bound, refused when late or waiting, later pauses move it);
  §4.7  late / early / on time, withdrawn = on time,
        resolved while waiting for a supplement judged at the instant the clock stopped;
  §4.8  stocks at 24:00: in progress on time / overdue, paused, abandoned (staleAfterDays);
  §6.1  every numeric column and on_time_rate, received_promise_differs included; a dossier counts on its T0's day
        (31-day fall-back);
  §6.2  daily figures, and periods made the way the report makes them (flows summed, carried_over from the first
        day, stocks from the last day); §6.3 unit rows (every unit), field rows, block rows and the city row `all`.

Leaves out: alerts (§5) and `rescheduled` (§4.6: it moves alerts, never report lateness); anomaly reporting.
`extended` (§4.6a) is implemented but, as of this writing, not exercised against SameDay: EDGE_EXTENDED=1 adds
its edge cases once the binary knows the event.

Choices where the rules are silent (each marked CHOICE below):
  - a session is the half-open interval [start, end): a T0 at exactly 11:30 is moved to 13:00;
  - a closure (resolved / withdrawn) before the dossier's counting day is counted on the counting day, so every
    daily row keeps the §6.4 identity; a `received` is needed for anything to count;
  - a fee pause that starts after the deadline does not move it (the clock model of §4.4: the deadline is the
    instant the running time reaches the SLA);
  - received_promise_differs compares `promisedAt` with the first episode's deadline as computed at reception
    (pauses of that episode not included: the slip is issued before any);
  - a resume without its pause (fee_paid without fee_requested, supplement_received without a request), or a second
    fee_requested while paused, changes nothing (`unexpected_resume`);
  - resolved while waiting for a supplement: the stop instant judges lateness, the resolution's day early (§4.7);
  - events before the first `received` other than closures (e.g. a fee request) change nothing.

`EDGE=1 scripts/reference-check.sh` runs the hand-made EDGE_CASES below (one dossier per unit) through SameDay too.

Usage:
  reference_rollups.py compute --config DIR --events FILE --from YYYY-MM-DD --to YYYY-MM-DD --out DIR [--perturb R]
  reference_rollups.py compare --ours DIR --units CSV --blocks CSV [--fields CSV] [--daily ROLLUPS_DIR]
  reference_rollups.py edge-events --out FILE [--with-extended]   (hand-made edge cases, one dossier per unit)
Python 3 standard library only.
"""
import argparse
import csv
import datetime
import json
import os
import sys
from collections import defaultdict

OFFSET = 7 * 3600                      # §2.4: fixed UTC+07:00
DAY = 86400
EPOCH = datetime.date(1970, 1, 1)
UNLISTED_FIELD = "Ngoài danh mục"      # §2.2
COUNT_FALLBACK_DAYS = 31               # §6.1: a T0 more than 31 days after arrival falls back to the arrival
SEARCH_DAYS = 800                      # how far a deadline search may look for a working session
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CLOSING = {"resolved", "withdrawn", "stopped"}
BLOCKS = ["commune", "department", "district", "vertical"]

FLOW = ["received_online", "received_direct_postal", "resolved_early", "resolved_on_time", "resolved_late",
        "withdrawn", "same_day_received", "same_day_resolved_in_time", "same_day_resolved_same_day",
        "received_not_in_catalog", "received_promise_differs"]
STOCK = ["in_progress_on_time", "in_progress_overdue", "paused", "abandoned"]
COLUMNS = ["received_total", "received_online", "received_direct_postal", "carried_over", "resolved_total",
           "resolved_early", "resolved_on_time", "resolved_late", "withdrawn", "in_progress_total",
           "in_progress_on_time", "in_progress_overdue", "paused", "abandoned", "same_day_received",
           "same_day_resolved_in_time", "same_day_resolved_same_day", "received_not_in_catalog",
           "received_promise_differs", "on_time_rate"]
PERTURBATIONS = ["fees-ignored", "count-on-arrival", "cutoff-exclusive"]


# ---------------------------------------------------------------- time

def local_seconds(text):
    """RFC 3339 with an offset -> seconds since 1970-01-01 00:00 local (+07:00); fractions dropped (§2.4)."""
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(microsecond=0)
    return int(dt.timestamp()) + OFFSET


def day_of(t):
    return t // DAY


def day_number(iso_date):
    return (datetime.date.fromisoformat(iso_date) - EPOCH).days


def iso_day(n):
    return (EPOCH + datetime.timedelta(days=n)).isoformat()


def minutes(hhmm):
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


# ---------------------------------------------------------------- configuration

def read_csv(path):
    """Rows as dicts by header name, so an added column (e.g. `source`) changes nothing."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


class Session:
    def __init__(self, spec, day_extra):
        if isinstance(spec, str):
            spec = {"time": spec}
        start, end = spec["time"].split("-")
        self.start, self.end = minutes(start) * 60, minutes(end) * 60
        self.extra = bool(spec.get("extra")) or day_extra   # §7.4: extra when it says so, or when its DAY does
        self.procedures = set(spec["procedures"]) if spec.get("procedures") else None
        self.cutoff = minutes(spec["cutoff"]) * 60 if spec.get("cutoff") else None
        self.first = day_number(spec["from"]) if spec.get("from") else None
        self.last = day_number(spec["until"]) if spec.get("until") else None

    def exists_on(self, d):
        return (self.first is None or d >= self.first) and (self.last is None or d <= self.last)

    def serves(self, proc):
        """§2.3: extra sessions serve same-day procedures only, those they name (codes or field:<lĩnh vực>)."""
        if not self.extra:
            return True
        if proc.sla_kind != "same-day":
            return False
        return self.procedures is None or proc.code in self.procedures or "field:" + proc.field in self.procedures


class DayPlan:
    def __init__(self, spec):
        self.cutoff = minutes(spec["cutoff"]) * 60 if spec.get("cutoff") else None
        self.sessions = [Session(s, spec.get("extra", False)) for s in spec["sessions"]]


def plan(spec):
    return None if spec is None else DayPlan(spec)


class Calendar:
    def __init__(self, cid, raw_by_id):
        chain = self.chain(cid, raw_by_id)                    # base first, the calendar itself last
        self.days, self.dates, self.holidays = {}, {}, set()
        for raw in chain:
            self.days.update({k: plan(v) for k, v in raw.get("days", {}).items()})
            self.dates.update({day_number(k): plan(v) for k, v in raw.get("dates", {}).items()})
            self.holidays |= {day_number(h) for h in raw.get("holidays", [])}
        self.cache = {}

    @staticmethod
    def chain(cid, raw_by_id):
        out = []
        while cid:
            out.append(raw_by_id[cid])
            cid = raw_by_id[cid].get("base")
        return list(reversed(out))

    def plan_on(self, d):
        """§7.4: a holiday has no session; a dated day replaces the weekday."""
        if d in self.holidays:
            return None
        if d in self.dates:
            return self.dates[d]
        return self.days.get(WEEKDAYS[(EPOCH + datetime.timedelta(days=d)).weekday()])

    def counted(self, d, proc):
        """The sessions that count for this procedure on day d, as (plan, [Session])."""
        key = (d, proc.sla_kind, proc.code, proc.field)
        if key not in self.cache:
            p = self.plan_on(d)
            sessions = [] if p is None else [s for s in p.sessions if s.exists_on(d) and s.serves(proc)]
            self.cache[key] = (p, sessions)
        return self.cache[key]


class Proc:
    """A dossier's procedure as the unit sees it: SLA, field, catalog cut-off (§2.2)."""
    def __init__(self, code, entry, default_sla):
        self.code = code
        self.in_catalog = entry is not None
        self.field = entry["field"] if entry else UNLISTED_FIELD
        sla = (entry["sla"] if entry else default_sla).strip()
        self.sla_kind, _, n = sla.partition(":")
        self.required = {"hours": int(n or 0) * 3600, "days": int(n or 0) * 480 * 60}.get(self.sla_kind)
        cut = (entry.get("cutoff") or "").strip() if entry else ""
        self.catalog_cutoff = minutes(cut) * 60 if cut else None


class Config:
    def __init__(self, folder):
        self.units = {r["code"]: r for r in read_csv(os.path.join(folder, "units.csv"))}
        self.catalog = {(r["procedure"], r["scope"]): r for r in read_csv(os.path.join(folder, "catalog.csv"))}
        self.field_order = self.fields_in_order()
        with open(os.path.join(folder, "calendars.json"), encoding="utf-8-sig") as f:
            raw = {c["id"]: c for c in json.load(f)["calendars"]}
        self.calendars = {cid: Calendar(cid, raw) for cid in raw}
        alerting = self.read_alerting(folder)
        self.default_sla = alerting.get("defaultSla", "days:1")
        self.stale_seconds = alerting.get("staleAfterDays", 60) * DAY
        self.fees_pause = alerting.get("feesPauseTheClock", True)
        extensions = alerting.get("extensions", {})
        self.extension_fields = set(extensions.get("fields", ["Chứng thực"]))     # §4.6a, §7.5 defaults
        self.extension_max = extensions.get("maxWorkingDays", 2) * 480 * 60
        self.pairs = self.read_pairs(folder)
        self.procs = {}

    def fields_in_order(self):
        order = []
        for r in self.catalog.values():
            if r["field"] not in order:
                order.append(r["field"])
        return order + [UNLISTED_FIELD]

    @staticmethod
    def read_alerting(folder):
        path = os.path.join(folder, "alerting.json")
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)

    @staticmethod
    def read_pairs(folder):
        path = os.path.join(folder, "interlevel.csv")
        if not os.path.exists(path):
            return set()
        return {(r["receiving"], r["resolving"]) for r in read_csv(path)}

    def proc(self, code, unit):
        """§2.2: the unit's own entry, else its parent's, else the city's; otherwise not in the catalog."""
        key = (code, unit)
        if key not in self.procs:
            parent = self.units[unit]["parent"]
            entry = (self.catalog.get((code, unit)) or (parent and self.catalog.get((code, parent)))
                     or self.catalog.get((code, "city")))
            self.procs[key] = Proc(code, entry or None, self.default_sla)
        return self.procs[key]

    def calendar(self, unit):
        return self.calendars[self.units[unit]["calendar"]]

    def owns(self, unit, dossier):
        """§1.1: the dossier code's agency id is the unit, or a declared inter-level pair (either direction)."""
        parts = dossier.rsplit("-", 2)
        if len(parts) != 3 or len(parts[1]) != 6 or not parts[1].isdigit() or not parts[2].isdigit():
            return False
        agency = parts[0]
        return agency == unit or (agency, unit) in self.pairs or (unit, agency) in self.pairs


# ---------------------------------------------------------------- working time on one dossier's calendar

class Clock:
    """Working time for one procedure at one unit: the sessions that count for it (§2.3, §4.2, §4.3)."""
    def __init__(self, calendar, proc, perturb):
        self.cal, self.proc, self.perturb = calendar, proc, perturb

    def intervals(self, d):
        _, sessions = self.cal.counted(d, self.proc)
        return [(d * DAY + s.start, d * DAY + s.end) for s in sessions]

    def next_start(self, t, limit_days=SEARCH_DAYS):
        """§4.1: t if it lies inside a counted session (CHOICE: [start, end)), else the next session's start."""
        for d in range(day_of(t), day_of(t) + limit_days + 1):
            for s, e in self.intervals(d):
                if t < e:
                    return max(s, t)
        return None

    def add(self, t, need, pauses=()):
        """The earliest instant at which `need` seconds of working time not inside `pauses` have run from t."""
        for d in range(day_of(t), day_of(t) + SEARCH_DAYS):
            for s, e in self.intervals(d):
                for a, b in minus(max(s, t), e, pauses):
                    if b - a >= need:
                        return a + need
                    need -= b - a
        raise ValueError("no working time within %d days" % SEARCH_DAYS)

    def between(self, a, b):
        total = 0
        for d in range(day_of(a), day_of(b) + 1):
            for s, e in self.intervals(d):
                total += max(0, min(e, b) - max(s, a))
        return total

    def same_day_due(self, t0):
        """§4.2: the end of T0's day's last counted session, or of the next day that has one after the cut-off."""
        d = day_of(t0)
        p, sessions = self.cal.counted(d, self.proc)
        cut = self.cutoff_in_force(p, sessions)
        late = (t0 - d * DAY) >= cut if self.perturb == "cutoff-exclusive" else (t0 - d * DAY) > cut
        if not late:
            return d * DAY + sessions[-1].end
        for nd in range(d + 1, d + SEARCH_DAYS):
            _, nxt = self.cal.counted(nd, self.proc)
            if nxt:
                return nd * DAY + nxt[-1].end
        raise ValueError("no working day after the cut-off")

    def cutoff_in_force(self, p, sessions):
        """§4.2 steps 1-4, as seconds after local midnight."""
        close, last = sessions[-1].end, sessions[-1]
        if self.proc.catalog_cutoff is not None and close > self.proc.catalog_cutoff:
            return self.proc.catalog_cutoff
        if last.extra and last.cutoff is not None:
            return last.cutoff
        if p.cutoff is not None:
            return p.cutoff
        return close - 120 * 60

    def need(self, t0):
        """The working time the SLA gives from T0: N hours or days, or up to the same-day deadline (§4.2, §4.3)."""
        if self.proc.sla_kind == "same-day":
            return self.between(t0, self.same_day_due(t0))
        return self.proc.required

    def deadline(self, t0, pauses, need=None):
        """§4.1-§4.4: T0 (already moved) plus the working time, the clock stopped during `pauses`."""
        return self.add(t0, self.need(t0) if need is None else need, pauses)

    def running(self, t0, until, pauses):
        """Working time the clock ran from T0 to `until` (pauses excluded)."""
        total = 0
        for d in range(day_of(t0), day_of(until) + 1):
            for s, e in self.intervals(d):
                total += sum(b - a for a, b in minus(max(s, t0), min(e, until), pauses))
        return total


def minus(a, b, pauses):
    """[a, b) without the paused intervals."""
    pieces = [(a, b)] if b > a else []
    for ps, pe in pauses:
        nxt = []
        for x, y in pieces:
            if pe <= x or ps >= y:
                nxt.append((x, y))
                continue
            if ps > x:
                nxt.append((x, ps))
            if pe < y:
                nxt.append((pe, y))
        pieces = nxt
    return pieces


# ---------------------------------------------------------------- events and dossiers

class Event:
    __slots__ = ("type", "t", "seq", "arrival", "unit", "procedure", "channel", "id", "promised", "new_due")

    def __init__(self, raw, arrival):
        self.type, self.id = raw["type"], raw["eventId"]
        self.t = local_seconds(raw["occurredAt"])
        self.seq, self.arrival = raw.get("seq"), arrival
        self.unit, self.procedure, self.channel = raw["unit"], raw["procedure"], raw.get("channel")
        self.promised = local_seconds(raw["promisedAt"]) if raw.get("promisedAt") else None
        self.new_due = local_seconds(raw["newDueAt"]) if raw.get("newDueAt") else None

    def order(self):
        """§3.4: (occurredAt, seq with a missing seq first, arrival)."""
        return (self.t, self.seq is not None, self.seq or 0, self.arrival)


def load_events(path, config, refused):
    """Events per dossier, first arrival of each eventId kept (§3.4); refused events dropped (§2.1, §1.1)."""
    dossiers = defaultdict(dict)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            raw = json.loads(line)
            if raw["unit"] not in config.units:
                refused["unknown_unit"] += 1
            elif not config.owns(raw["unit"], raw["dossier"]):
                refused["foreign_dossier"] += 1
            elif raw["eventId"] in dossiers[raw["dossier"]]:
                refused["duplicate"] += 1
            else:
                dossiers[raw["dossier"]][raw["eventId"]] = Event(raw, n)
    return {code: sorted(evs.values(), key=Event.order) for code, evs in dossiers.items()}


class Episode:
    def __init__(self, t0):
        self.t0 = t0                    # moved T0
        self.pauses = []                # closed fee pauses [(start, end)]
        self.pause_open = None          # start of an open fee pause
        self.waiting = None             # instant a supplement was requested (clock stopped)
        self.need = None                # working time an extension gives (None: the SLA's)
        self.bound = None               # the latest deadline extensions may reach (§4.6a)


class State:
    """A dossier as its events up to some instant make it (§3.3, §4)."""
    def __init__(self):
        self.episodes, self.closure, self.last_event = [], None, None


class Dossier:
    def __init__(self, code, events, config, perturb):
        self.code, self.events, self.perturb = code, events, perturb
        first = next((i for i, e in enumerate(events) if e.type == "received"), None)
        closed_before = first is not None and any(e.type in CLOSING for e in events[:first])
        self.counted = first is not None and not closed_before      # §3.4: never received otherwise
        if not self.counted:
            return
        rec = events[first]
        self.first = first
        self.unit, self.channel, self.promised = rec.unit, rec.channel, rec.promised
        self.proc = config.proc(rec.procedure, rec.unit)
        self.clock = Clock(config.calendar(rec.unit), self.proc, perturb)
        self.fees_pause = config.fees_pause and perturb != "fees-ignored"
        self.stale_seconds = config.stale_seconds
        self.config = config
        self.arrival = rec.t
        self.count_day = self.counting_day(rec.t)
        self.final = self.state(None)
        self.closure_day = None
        if self.final.closure and self.final.closure[0] != "stopped":
            self.closure_day = max(day_of(self.final.closure[1]), self.count_day)   # CHOICE, see the top

    def counting_day(self, arrival):
        """§6.1: the day of T0 moved into the next counted session; more than 31 days on: the arrival's day."""
        if self.perturb == "count-on-arrival":
            return day_of(arrival)
        moved = self.clock.next_start(arrival, COUNT_FALLBACK_DAYS + 1)
        if moved is None or moved - arrival > COUNT_FALLBACK_DAYS * DAY:
            return day_of(arrival)
        return day_of(moved)

    def state(self, limit):
        """Apply the events before `limit` (None: all), in order, from the first `received`."""
        st = State()
        for e in self.events:
            if limit is not None and e.t >= limit:
                break
            st.last_event = e.t
        for e in self.events[self.first:]:
            if limit is not None and e.t >= limit:
                break
            if st.closure:
                continue                                  # §3.4: after a closure everything but `returned` ignored
            self.apply(st, e)
        return st

    def apply(self, st, e):
        ep = st.episodes[-1] if st.episodes else None
        if ep is None:
            st.episodes.append(Episode(self.clock.next_start(e.t)))   # the first `received`
        elif e.type == "fee_requested" and self.fees_pause and ep.pause_open is None and ep.waiting is None:
            ep.pause_open = e.t
        elif e.type == "fee_paid" and self.fees_pause and ep.pause_open is not None:
            ep.pauses.append((ep.pause_open, e.t))
            ep.pause_open = None
        elif e.type == "supplement_requested" and ep.waiting is None:
            ep.waiting = e.t
        elif e.type == "supplement_received" and ep.waiting is not None:
            st.episodes.append(Episode(self.clock.next_start(e.t)))   # §4.5: a new episode from zero
        elif e.type == "extended":
            self.extend(ep, e)
        elif e.type in CLOSING:
            st.closure = (e.type, e.t)

    def extend(self, ep, e):
        """§4.6a: in the field list, clock running or paused for fees, decided by the deadline, to a later date;
        the deadline moves to newDueAt, capped at maxWorkingDays after the unextended deadline."""
        if self.proc.field not in self.config.extension_fields or ep.waiting is not None or e.new_due is None:
            return
        pauses = ep.pauses + ([(ep.pause_open, e.t)] if ep.pause_open is not None else [])
        current = self.clock.deadline(ep.t0, pauses, ep.need)
        if e.t > current or e.new_due <= current:
            return                                        # extension_refused
        if ep.bound is None:
            ep.bound = self.clock.add(current, self.config.extension_max)
        ep.need = self.clock.running(ep.t0, min(e.new_due, ep.bound), pauses)

    def due(self, ep, until=None):
        """The episode's deadline, pauses so far included; an open pause ends at `until` (§8: at resolution)."""
        pauses = list(ep.pauses)
        if ep.pause_open is not None and until is not None:
            pauses.append((ep.pause_open, until))
        return self.clock.deadline(ep.t0, pauses, ep.need)

    def promise_differs(self):
        """§6.1: the slip's return date on another calendar day than the first episode's deadline (CHOICE: the
        deadline as computed at reception, before any pause)."""
        if self.promised is None:
            return False
        return day_of(self.promised) != day_of(self.clock.deadline(self.final.episodes[0].t0, []))

    def judgement(self):
        """§4.7 for a closed dossier: 'early', 'on_time' or 'late' (withdrawn: on time)."""
        kind, t = self.final.closure
        if kind == "withdrawn":
            return "on_time"
        ep = self.final.episodes[-1]
        judged = ep.waiting if ep.waiting is not None else t      # waiting for a supplement: when the clock stopped
        due = self.due(ep, until=judged)
        if judged > due:
            return "late"
        return "early" if day_of(t) < day_of(due) else "on_time"   # §4.7: the day of the resolution itself

    def stock(self, end):
        """§4.8: the stock this open dossier is in at `end` (24:00 of a day)."""
        st = self.state(end)
        ep = st.episodes[-1]
        stale = end - st.last_event >= self.stale_seconds
        if (st.closure and st.closure[0] == "stopped") or ep.waiting is not None:
            return "abandoned" if stale else "paused"
        if ep.pause_open is not None:
            return "paused"
        return "in_progress_overdue" if self.due(ep) < end else "in_progress_on_time"


# ---------------------------------------------------------------- rollups

def zero():
    return dict.fromkeys(FLOW + STOCK + ["carried_over"], 0)


def flows(d, day, add):
    """A dossier's flows on `day` (§6.1), passed to add(column)."""
    same_day = d.proc.sla_kind == "same-day"
    if d.count_day == day:
        add("received_online" if d.channel == "online" else "received_direct_postal")
        add("same_day_received", same_day)
        add("received_not_in_catalog", not d.proc.in_catalog)
        add("received_promise_differs", d.promise_differs())
    if d.closure_day == day:
        kind, t = d.final.closure
        judged = d.judgement()
        add("resolved_" + judged)
        add("withdrawn", kind == "withdrawn")
        add("same_day_resolved_in_time", same_day and judged != "late")
        resolved_day = day_of(t)
        on_its_day = resolved_day == d.count_day or (resolved_day < d.count_day and resolved_day == day_of(d.arrival))
        add("same_day_resolved_same_day", same_day and kind == "resolved" and on_its_day)


def open_at_end(d, day):
    return d.count_day <= day and (d.closure_day is None or d.closure_day > day)


def daily_rows(dossiers, first_day, last_day):
    """{(day, unit, field): figures} for every day of the period."""
    rows = defaultdict(zero)
    for d in dossiers:
        for day in range(max(first_day, d.count_day), last_day + 1):
            if d.closure_day is not None and d.closure_day < day:
                break                                     # closed: nothing more to count
            row = rows[(day, d.unit, d.proc.field)]

            def add(col, cond=True, row=row):
                row[col] += 1 if cond else 0
            flows(d, day, add)
            if d.count_day < day:
                row["carried_over"] += 1                  # received before, not closed before this day
            if open_at_end(d, day):
                row[d.stock((day + 1) * DAY)] += 1
    return rows


def finish(fig):
    """The derived columns of §6.1 and §6.4."""
    out = dict(fig)
    out["received_total"] = fig["received_online"] + fig["received_direct_postal"] + fig["carried_over"]
    out["resolved_total"] = fig["resolved_early"] + fig["resolved_on_time"] + fig["resolved_late"]
    out["in_progress_total"] = fig["in_progress_on_time"] + fig["in_progress_overdue"]
    out["on_time_rate"] = rate(fig["resolved_early"] + fig["resolved_on_time"], out["resolved_total"])
    return out


def rate(good, total):
    """Percentage with one decimal, rounded half up; empty when nothing was resolved."""
    if total == 0:
        return ""
    tenths = (2000 * good + total) // (2 * total)
    return "%d.%d" % (tenths // 10, tenths % 10)


def period(daily, days):
    """§6.2: flows summed, carried_over from the first day, stocks from the last."""
    fig = zero()
    for col in FLOW:
        fig[col] = sum(daily[d][col] for d in days)
    fig["carried_over"] = daily[days[0]]["carried_over"]
    for col in STOCK:
        fig[col] = daily[days[-1]][col]
    return fig


def add_into(target, fig):
    for col in fig:
        target[col] += fig[col]


def build_tables(config, rows, days):
    """Unit, field, block and city rows for the period, plus per-day unit rows."""
    by_unit_day = defaultdict(zero)
    by_field_day = defaultdict(lambda: defaultdict(zero))
    for (day, unit, field), fig in rows.items():
        add_into(by_unit_day[(unit, day)], fig)
        add_into(by_field_day[(unit, field)][day], fig)
    units, daily = {}, {}
    for unit in config.units:
        per_day = {day: by_unit_day[(unit, day)] for day in days}
        units[unit] = period(per_day, days)
        daily.update({(iso_day(day), unit): per_day[day] for day in days})
    fields = {k: period(v, days) for k, v in by_field_day.items()}
    # §6.3: a row per block the registry has, even an empty one (a map without districts has no district row).
    present = {u["block"] for u in config.units.values()}
    blocks = defaultdict(zero, {b: zero() for b in BLOCKS if b in present})
    for unit, fig in units.items():
        add_into(blocks[config.units[unit]["block"]], fig)
        add_into(blocks["all"], fig)
    return units, fields, blocks, daily


# ---------------------------------------------------------------- output

def write_csv(path, keys, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys + COLUMNS)
        for key, fig in rows:
            fig = finish(fig)
            w.writerow(list(key) + [fig[c] for c in COLUMNS])


def stats_of(dossiers):
    counted = [d for d in dossiers if d.counted]
    closed = [d for d in counted if d.closure_day is not None]
    return {
        "dossiers": len(counted),
        "late": sum(1 for d in closed if d.judgement() == "late"),
        "fee_paused": sum(1 for d in counted if any(e.type == "fee_requested" for e in d.events)),
        "supplemented": sum(1 for d in counted if len(d.final.episodes) > 1),
        "withdrawn": sum(1 for d in closed if d.final.closure[0] == "withdrawn"),
    }


def compute(args):
    config = Config(args.config)
    refused = defaultdict(int)
    events = load_events(args.events, config, refused)
    dossiers = [Dossier(code, evs, config, args.perturb) for code, evs in events.items()]
    first, last = day_number(args.from_), day_number(args.to)
    days = list(range(first, last + 1))
    rows = daily_rows([d for d in dossiers if d.counted], first, last)
    units, fields, blocks, daily = build_tables(config, rows, days)
    os.makedirs(args.out, exist_ok=True)
    span = [args.from_, args.to]
    unit_key = lambda u: [config.units[u]["block"], u]
    write_csv(os.path.join(args.out, "units.csv"), ["from", "to", "unit", "block"],
              [(span + [u, config.units[u]["block"]], units[u]) for u in sorted(units, key=unit_key)])
    field_rank = {f: i for i, f in enumerate(config.field_order)}
    write_csv(os.path.join(args.out, "fields.csv"), ["from", "to", "unit", "block", "field"],
              [(span + [u, config.units[u]["block"], f], fields[(u, f)])
               for u, f in sorted(fields, key=lambda k: unit_key(k[0]) + [field_rank.get(k[1], 999)])])
    write_csv(os.path.join(args.out, "blocks.csv"), ["from", "to", "block"],
              [(span + [b], blocks[b]) for b in sorted(k for k in blocks if k != "all") + ["all"]])
    write_csv(os.path.join(args.out, "daily_units.csv"), ["from", "to", "unit", "block"],
              [([day, day, u, config.units[u]["block"]], fig) for (day, u), fig in sorted(daily.items())])
    stats = dict(stats_of(dossiers), refused=dict(refused), perturb=args.perturb)
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(stats, f)
    print("reference: %(dossiers)d dossiers (%(late)d late, %(fee_paused)d fee-paused, %(supplemented)d "
          "supplemented, %(withdrawn)d withdrawn)" % stats, file=sys.stderr)


# ---------------------------------------------------------------- comparison

def read_rows(path, keys):
    """{key tuple: row} of a CSV (BOM and CRLF of SameDay's files are fine)."""
    out = {}
    for r in read_csv(path):
        out[tuple(r[k] for k in keys)] = r
    return out


def same(a, b):
    a, b = (a or "").strip(), (b or "").strip()
    if a == b:
        return True
    try:
        return float(a or "nan") == float(b or "nan")
    except ValueError:
        return False


def cell(row, col):
    """A row's value; a row that is absent (a field row with nothing that day) reads as zeros."""
    if row is None:
        return "" if col == "on_time_rate" else "0"
    return row.get(col, "")


def uncovered_columns(header, keys):
    """Report columns this reference does not compute (neither a key nor a §6.1 column)."""
    ignored = set(keys) | {"from", "to", "unit", "unit_name", "block", "field", "data"}
    return {c for c in header if c not in COLUMNS and c not in ignored}


def compare_table(name, ours_path, theirs_path, keys, diffs, counts, missing_is_zero=False):
    ours, theirs = read_rows(ours_path, keys), read_rows(theirs_path, keys)
    header = list(next(iter(theirs.values())).keys()) if theirs else COLUMNS
    cols = [c for c in COLUMNS if c in header]
    counts["uncovered"] |= uncovered_columns(header, keys)
    for key in sorted(set(ours) | set(theirs)):
        o, t = ours.get(key), theirs.get(key)
        if (o is None or t is None) and not missing_is_zero:
            diffs.append((name, key, "(row)", "present" if o else "absent", "present" if t else "absent"))
            continue
        counts["rows"] += 1
        counts["cells"] += len(cols)
        diffs.extend((name, key, c, cell(o, c), cell(t, c)) for c in cols if not same(cell(o, c), cell(t, c)))
    counts["columns"] = max(counts["columns"], len(cols))


def compare_daily(ours_dir, rollups, diffs, counts):
    ours = read_rows(os.path.join(ours_dir, "daily_units.csv"), ["from", "unit"])
    for day in sorted(os.listdir(os.path.join(rollups, "daily"))):
        path = os.path.join(rollups, "daily", day, "units.csv")
        if not os.path.exists(path):
            continue
        for (frm, unit), t in read_rows(path, ["from", "unit"]).items():
            o = ours.get((frm, unit))
            if o is None:
                continue                                  # a day outside the compared period
            counts["daily_rows"] += 1
            for c in COLUMNS:
                if c in t and not same(o[c], t[c]):
                    diffs.append(("daily", (frm, unit), c, o[c], t[c]))


def compare(args):
    diffs, counts = [], {"rows": 0, "cells": 0, "columns": 0, "daily_rows": 0, "uncovered": set()}
    compare_table("units", os.path.join(args.ours, "units.csv"), args.units, ["unit"], diffs, counts)
    compare_table("blocks", os.path.join(args.ours, "blocks.csv"), args.blocks, ["block"], diffs, counts)
    if args.fields:
        compare_table("fields", os.path.join(args.ours, "fields.csv"), args.fields, ["unit", "field"], diffs,
                      counts, missing_is_zero=True)
    if args.daily:
        compare_daily(args.ours, args.daily, diffs, counts)
    with open(os.path.join(args.ours, "stats.json")) as f:
        stats = json.load(f)
    if counts["uncovered"]:
        print("note: report columns not covered: %s" % ", ".join(sorted(counts["uncovered"])))
    if diffs:
        print("DIFFERENCES: %d (reference vs sameday report), first 20:" % len(diffs))
        for table, key, col, ov, tv in diffs[:20]:
            print("  %-6s %-40s %-28s reference=%-8s sameday=%s" % (table, "/".join(key), col, ov, tv))
        return 1
    daily = " and %d daily unit rows" % counts["daily_rows"] if counts["daily_rows"] else ""
    print("reference check OK: %d report rows x %d columns (%d cells)%s agree; the events hold %d dossiers "
          "counted: %d resolved late, %d fee-paused, %d supplemented, %d withdrawn"
          % (counts["rows"], counts["columns"], counts["cells"], daily, stats["dossiers"],
             stats["late"], stats["fee_paused"], stats["supplemented"], stats["withdrawn"]))
    return 0


# ---------------------------------------------------------------- hand-made edge cases

SAME_DAY, DAYS2, HOURS8 = "1.001193.000.00.00.H29", "2.001019.000.00.00.H29", "2.001035.000.00.00.H29"
CERT, CUT14 = "2.000815.000.00.00.H29", "1.004873.000.00.00.H29"

# One dossier per unit, so a difference names its case. (unit, procedure, [(type, local time, extra fields)], what)
EDGE_CASES = [
    ("26734", SAME_DAY, [("received", "2022-05-16T17:00:00"), ("resolved", "2022-05-17T09:00:00")],
     "§4.1 T0 at a session's end is moved to the next session"),
    ("26737", SAME_DAY, [("withdrawn", "2022-05-16T09:00:00"), ("received", "2022-05-16T10:00:00")],
     "§3.4 a withdrawn before any received: never counted"),
    ("26740", SAME_DAY, [("resolved", "2022-05-16T09:00:00"), ("received", "2022-05-16T10:00:00")],
     "§3.4 a resolved before the received: the received comes after a closure"),
    ("26743", DAYS2, [("received", "2022-05-16T08:00:00"), ("supplement_requested", "2022-05-16T09:00:00"),
                      ("resolved", "2022-05-18T10:00:00")],
     "§4.7 resolved while waiting for a supplement: judged when the clock stopped"),
    ("26746", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("fee_requested", "2022-05-16T16:00:00"),
                         ("resolved", "2022-05-17T09:00:00")], "§8 resolved during a fee pause"),
    ("26749", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("stopped", "2022-05-16T11:00:00")],
     "§4.8 stopped: paused, then abandoned after 60 days"),
    ("26752", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("supplement_requested", "2022-05-16T11:00:00")],
     "§4.8 waiting for a supplement: paused, then abandoned"),
    ("26755", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("supplement_received", "2022-05-17T08:00:00"),
                         ("resolved", "2022-05-17T09:00:00")], "§3.4 a resume without a request"),
    ("26758", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("fee_requested", "2022-05-16T16:00:00"),
                         ("fee_requested", "2022-05-17T08:00:00"), ("fee_paid", "2022-05-17T10:00:00"),
                         ("resolved", "2022-05-17T10:30:00")], "§3.4 a second fee request while paused"),
    ("26761", SAME_DAY, [("received", "2022-05-15T21:00:00", {"channel": "online"}),
                         ("withdrawn", "2022-05-15T22:00:00")], "§6.1 Sunday arrival, withdrawn before its T0"),
    ("26764", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("resolved", "2022-05-16T17:00:00")],
     "§4.7 resolved exactly at the deadline"),
    ("26767", SAME_DAY, [("received", "2022-05-16T16:00:00"), ("resolved", "2022-05-17T00:00:00")],
     "§6.2 resolved at midnight"),
    ("769", CERT, [("received", "2022-05-21T10:00:00"), ("resolved", "2022-05-23T09:00:00")],
     "§4.2 Saturday unit after the Saturday cut-off"),
    ("000.00.29.G01", "1.999999.000.00.00.H29", [("received", "2022-05-21T09:00:00"),
                                                 ("resolved", "2022-05-23T16:00:00")],
     "§2.2 not in catalog (days:1) received in an extra session"),
    ("000.41.29.G01", CUT14, [("received", "2022-05-21T09:45:00"), ("resolved", "2022-05-23T16:00:00")],
     "§4.2 a 14:00 catalog cut-off on a Saturday closing at 11:30"),
    ("27010", CERT, [("received", "2022-06-14T17:30:00"), ("resolved", "2022-06-15T09:00:00")],
     "§2.3 an extra session before its from date"),
    ("000.00.82.H29", "1.000105.000.00.00.H29", [("received", "2022-05-25T17:30:00"),
                                                 ("resolved", "2022-05-25T17:45:00")],
     "§4.2 fair-day extra evening after the day's cut-off"),
    ("26770", DAYS2, [("received", "2022-05-16T08:00:00", {"promisedAt": "2022-05-17T17:00:00+07:00"}),
                      ("resolved", "2022-05-17T10:00:00")], "§6.1 promisedAt on another day"),
    ("26773", SAME_DAY, [("received", "2022-05-16T10:00:00", {"promisedAt": "2022-05-16T16:30:00+07:00"}),
                         ("resolved", "2022-05-16T11:00:00")], "§6.1 promisedAt on the deadline's day"),
    ("26776", SAME_DAY, [("received", "2022-09-02T10:00:00"), ("resolved", "2022-09-05T10:00:00")],
     "§6.1 holiday arrival counts on the next working day"),
    ("26779", SAME_DAY, [("received", "2022-05-16T10:00:00", {"channel": "direct"}),
                         ("received", "2022-05-16T09:00:00", {"channel": "online"}),
                         ("resolved", "2022-05-16T11:00:00")], "§3.4 the first received in event order"),
    ("26785", SAME_DAY, [("fee_requested", "2022-05-16T09:00:00"), ("received", "2022-05-16T10:00:00"),
                         ("resolved", "2022-05-17T10:00:00")], "§3.4 a fee request before the received"),
    ("26788", SAME_DAY, [("received", "2022-05-16T15:00:00"), ("resolved", "2022-05-16T16:00:00")],
     "§4.2 T0 at the cut-off"),
    ("26791", SAME_DAY, [("received", "2022-05-16T15:00:01"), ("resolved", "2022-05-16T16:00:00")],
     "§4.2 T0 a second after the cut-off"),
    ("26794", HOURS8, [("received", "2022-05-16T13:00:00"), ("resolved", "2022-05-17T12:00:00")],
     "§4.1 the earliest instant: hours:8 ends at 11:30"),
    ("26797", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("fee_requested", "2022-05-17T08:00:00"),
                         ("fee_paid", "2022-05-17T16:00:00"), ("resolved", "2022-05-17T16:30:00")],
     "§4.4 a fee pause after the deadline"),
    ("26803", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("resolved", "2022-05-16T11:00:00"),
                         ("supplement_requested", "2022-05-16T12:00:00"), ("resolved", "2022-05-18T12:00:00")],
     "§3.4 events after a closure"),
    ("26806", DAYS2, [("received", "2022-05-16T08:00:00"), ("supplement_requested", "2022-05-16T09:00:00"),
                      ("supplement_received", "2022-05-20T16:00:00"), ("resolved", "2022-05-25T10:00:00")],
     "§4.5 a late second episode"),
    ("26809", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("rescheduled", "2022-05-16T16:00:00",
                                                               {"newDueAt": "2022-05-18T17:00:00+07:00"}),
                         ("resolved", "2022-05-17T10:00:00")], "§4.6 a reschedule does not make it on time"),
    ("26812", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("fee_requested", "2022-05-16T11:00:00"),
                         ("supplement_requested", "2022-05-16T12:00:00"),
                         ("supplement_received", "2022-05-17T08:00:00"), ("resolved", "2022-05-17T10:00:00")],
     "§4.5 a supplement requested during a fee pause"),
    ("26815", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("supplement_requested", "2022-05-16T11:00:00"),
                         ("supplement_received", "2022-05-17T20:00:00"), ("resolved", "2022-05-18T16:00:00")],
     "§4.1 a supplement back in the evening: the new T0 moves to the next morning"),
    ("26818", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("stopped", "2022-05-16T11:00:00"),
                         ("resolved", "2022-07-20T10:00:00")],
     "§4.8 abandoned, then a later event (ignored after the closure) brings it back"),
]


def extended(new_due):
    return {"newDueAt": new_due + "+07:00"}


# §4.6a lawful extensions, for a binary that knows the `extended` event (EDGE_EXTENDED=1).
EXTENDED_CASES = [
    ("26821", CERT, [("received", "2022-05-16T10:00:00"), ("extended", "2022-05-16T16:00:00",
                                                           extended("2022-05-18T17:00:00")),
                     ("resolved", "2022-05-18T16:00:00")], "§4.6a an extension within the bound: on time"),
    ("26824", CERT, [("received", "2022-05-16T10:00:00"), ("extended", "2022-05-16T16:00:00",
                                                           extended("2022-05-20T17:00:00")),
                     ("resolved", "2022-05-19T09:00:00")], "§4.6a capped two working days on: late"),
    ("26827", CERT, [("received", "2022-05-16T10:00:00"), ("extended", "2022-05-16T17:30:00",
                                                           extended("2022-05-18T17:00:00")),
                     ("resolved", "2022-05-17T09:00:00")], "§4.6a decided after the deadline: refused"),
    ("26830", SAME_DAY, [("received", "2022-05-16T10:00:00"), ("extended", "2022-05-16T16:00:00",
                                                               extended("2022-05-18T17:00:00")),
                         ("resolved", "2022-05-17T09:00:00")], "§4.6a a field without extensions: refused"),
    ("26833", CERT, [("received", "2022-05-16T10:00:00"), ("extended", "2022-05-16T11:00:00",
                                                           extended("2022-05-17T17:00:00")),
                     ("fee_requested", "2022-05-17T09:00:00"), ("fee_paid", "2022-05-17T10:00:00"),
                     ("resolved", "2022-05-18T08:00:00")], "§4.6a a later pause moves the extended deadline"),
    ("26836", CERT, [("received", "2022-05-16T10:00:00"), ("extended", "2022-05-16T11:00:00",
                                                           extended("2022-05-18T17:00:00")),
                     ("supplement_requested", "2022-05-16T12:00:00"),
                     ("supplement_received", "2022-05-17T08:00:00"), ("resolved", "2022-05-18T10:00:00")],
     "§4.6a a new episode starts without the extension"),
]


def edge_events(args):
    """Write the hand-made edge cases as events, and print which unit holds which case."""
    cases = EDGE_CASES + (EXTENDED_CASES if args.with_extended else [])
    with open(args.out, "w", encoding="utf-8") as f:
        for n, (unit, proc, evs, what) in enumerate(cases, 1):
            code = "%s-220516-%04d" % (unit, n)
            for i, (typ, t, *extra) in enumerate(evs):
                ev = {"schema": "sameday.dossier-event/1", "eventId": "%s#%d" % (code, i), "dossier": code,
                      "unit": unit, "procedure": proc, "type": typ, "occurredAt": t + "+07:00"}
                ev.update(extra[0] if extra else {})
                ev["source"] = "simulate:reference-edge"
                f.write(json.dumps(ev, ensure_ascii=False) + "\n")
            print("%-14s %s" % (unit, what))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compute")
    c.add_argument("--config", required=True)
    c.add_argument("--events", required=True)
    c.add_argument("--from", dest="from_", required=True)
    c.add_argument("--to", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--perturb", choices=PERTURBATIONS, help="deliberately break one rule (to prove the check fails)")
    k = sub.add_parser("compare")
    k.add_argument("--ours", required=True)
    k.add_argument("--units", required=True)
    k.add_argument("--blocks", required=True)
    k.add_argument("--fields")
    k.add_argument("--daily", help="a rollups folder: also compare its daily/*/units.csv")
    e = sub.add_parser("edge-events", help="write hand-made edge cases as an events file")
    e.add_argument("--out", required=True)
    e.add_argument("--with-extended", action="store_true", help="add the §4.6a `extended` cases")
    args = ap.parse_args()
    if args.cmd == "edge-events":
        return edge_events(args)
    if args.cmd == "compute":
        compute(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
