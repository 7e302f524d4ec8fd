#!/usr/bin/python3
"""A congested afternoon at District 1 (unit 760) for the demonstration (scripts/demo.sh), after the action month.

The seed's month has no lateness with a cause: every same-day dossier is resolved within its day by construction, so
the queue forecast (`at_risk`, docs/rules.md §5.6) has nothing true to say in it. This adds one afternoon where it
has. After the month (its report and the comparison with the seed are untouched), District 1's certification desk
has three ordinary days (16, 17 and 20 June 2022: MORNING dossiers in the morning, half as many early in the
afternoon), then on Tuesday 21 June an ordinary morning and a company filing COUNT certifications of copies between
13:00 and 14:00. The desk serves in order of receipt, one every SERVICE minutes of working time on average (sessions
07:30–11:30 and 13:00–17:00); what it cannot finish by 17:00 is resolved the next morning, late. The forecast sees
only these events, never the desk's pace. (The month resolves each unit's dossiers in random order, so the forecast
has learnt not to trust District 1's queue; the ordinary days served in order teach it again, in each of the
workers' shards, which see about a quarter of the unit's dossiers each.)

Usage: demo-congestion.py EVENTS.jsonl [COUNT [SERVICE [MORNING]]]   (merged in time order; 90, 5 and 30 by default)
Python's standard library only.
"""

import datetime
import json
import os
import random
import re
import sys

TZ = datetime.timezone(datetime.timedelta(hours=7))
UNIT = "760"
PROCEDURE = "2.000815.000.00.00.H29"  # Chứng thực bản sao từ bản chính (same-day, catalog.csv)
# Three ordinary working days after the month (Thursday, Friday, Monday), then the busy Tuesday.
ORDINARY_DAYS = [datetime.date(2022, 6, 16), datetime.date(2022, 6, 17), datetime.date(2022, 6, 20)]
BUSY_DAY = datetime.date(2022, 6, 21)
OCCURRED = re.compile(r'"occurredAt":"([^"]+)"')
SESSIONS = [(datetime.time(7, 30), datetime.time(11, 30)), (datetime.time(13, 0), datetime.time(17, 0))]


def working_after(start, seconds):
    """The instant `seconds` of working time after `start` (sessions of Monday to Friday; no holiday falls in these
    days of June 2022)."""
    day = start.date()
    while True:
        for opens, closes in SESSIONS:
            begin = max(start, datetime.datetime.combine(day, opens, TZ))
            end = datetime.datetime.combine(day, closes, TZ)
            if begin >= end:
                continue
            if begin + datetime.timedelta(seconds=seconds) <= end:
                return begin + datetime.timedelta(seconds=seconds)
            seconds -= (end - begin).total_seconds()
        day += datetime.timedelta(days=1)
        while day.weekday() >= 5:
            day += datetime.timedelta(days=1)


def event(dossier, kind, seq, at):
    e = {
        "schema": "sameday.dossier-event/1", "eventId": f"{dossier}#{seq}", "dossier": dossier, "unit": UNIT,
        "procedure": PROCEDURE, "type": kind, "occurredAt": at.isoformat(timespec="seconds"), "seq": seq,
    }
    if kind == "received":
        e["channel"] = "direct"  # at the desk (only a reception has a channel)
    e["source"] = "simulate:demo-afternoon-760"
    return e


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 90
    service = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    morning = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    rng = random.Random(760)

    def between(day, start, end, n):
        opens = datetime.datetime.combine(day, start, TZ)
        span = int((datetime.datetime.combine(day, end, TZ) - opens).total_seconds())
        return [opens + datetime.timedelta(seconds=rng.randrange(span)) for _ in range(n)]

    arrivals = []
    for day in ORDINARY_DAYS:
        # Before the intake cut-off (15:00), so each is due the same day.
        arrivals += between(day, datetime.time(7, 30), datetime.time(11, 30), morning)
        arrivals += between(day, datetime.time(13, 0), datetime.time(14, 30), morning // 2)
    arrivals += between(BUSY_DAY, datetime.time(7, 30), datetime.time(11, 0), morning)
    arrivals += between(BUSY_DAY, datetime.time(13, 0), datetime.time(14, 0), count)
    arrivals.sort()
    lines = []
    free = arrivals[0]
    late = 0
    numbers = {}
    for received in arrivals:
        day = received.date()
        numbers[day] = numbers.get(day, 0) + 1
        dossier = f"{UNIT}-{day:%y%m%d}-{numbers[day]:04d}"
        # In order of receipt: the next starts when the desk is free and the dossier is there; the time varies.
        start = max(free, received)
        free = working_after(start, rng.uniform(0.6, 1.4) * service * 60)
        late += free.date() != day
        lines.append(event(dossier, "received", 0, received))
        lines.append(event(dossier, "resolved", 1, free))
    # Merged in time order, not appended: the month's file runs on into July (dossiers that are not same-day), and a
    # worker on the events' clock takes an event older than its clock as late.
    added = [(e["occurredAt"], json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
             for e in sorted(lines, key=lambda e: (e["occurredAt"], e["eventId"]))]
    temporary = path + ".merging"
    with open(path, encoding="utf-8") as source, open(temporary, "w", encoding="utf-8") as target:
        for line in source:
            at = OCCURRED.search(line)
            while added and at is not None and added[0][0] < at.group(1):
                target.write(added.pop(0)[1])
            target.write(line)
        target.writelines(line for _, line in added)
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, path)
    print(f"District 1, 16–21/6/2022: three ordinary days, then on Tuesday 21/6 {morning} dossiers in the morning and "
          f"{count} certifications 13:00–14:00; served in order, one every ~{service:g} working minutes; {late} late "
          f"(resolved the next morning)")


if __name__ == "__main__":
    main()
