#!/usr/bin/python3
"""A congested afternoon at District 1 (unit 760) for the demonstration (scripts/demo.sh), after the action month.

The seed's month has no lateness with a cause: every same-day dossier is resolved within its day by construction, so
the queue forecast (`at_risk`, docs/rules.md §5.6) has nothing true to say in it. This appends one afternoon where it
has: on Thursday 16 June 2022, the day after the month (the month's report and the comparison with the seed are
untouched), District 1's certification desk has an ordinary morning (MORNING dossiers arriving 07:30–11:00), then a
company files COUNT certifications of copies between 13:00 and 14:00. The desk serves them in order of receipt, one
every SERVICE minutes of working time on average (sessions 07:30–11:30 and 13:00–17:00); what it cannot finish by
17:00 is resolved on Friday morning, late. The forecast sees only these events, never the desk's pace. (The month
resolves each unit's dossiers in random order, so the forecast has learnt not to trust District 1's queue; the
morning served in order is what teaches it again.)

Usage: demo-congestion.py EVENTS.jsonl [COUNT [SERVICE [MORNING]]]   (appends; 60, 5 and 30 by default)
Python's standard library only.
"""

import datetime
import json
import random
import sys

TZ = datetime.timezone(datetime.timedelta(hours=7))
UNIT = "760"
PROCEDURE = "2.000815.000.00.00.H29"  # Chứng thực bản sao từ bản chính (same-day, catalog.csv)
DAY = datetime.date(2022, 6, 16)  # a Thursday, a working day; the next one is Friday 17 June
SESSIONS = [(datetime.time(7, 30), datetime.time(11, 30)), (datetime.time(13, 0), datetime.time(17, 0))]


def working_after(start, seconds):
    """The instant `seconds` of working time after `start` (sessions only, Thursday then Friday)."""
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
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    service = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    morning = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    rng = random.Random(760)
    day_opens = datetime.datetime.combine(DAY, datetime.time(7, 30), TZ)
    opens = datetime.datetime.combine(DAY, datetime.time(13, 0), TZ)
    arrivals = sorted(
        [day_opens + datetime.timedelta(seconds=rng.randrange(12600)) for _ in range(morning)]
        + [opens + datetime.timedelta(seconds=rng.randrange(3600)) for _ in range(count)])
    lines = []
    free = day_opens
    late = 0
    for i, received in enumerate(arrivals, 1):
        dossier = f"{UNIT}-220616-A{i:04d}"
        # In order of receipt: the next starts when the desk is free and the dossier is there; the time varies.
        start = max(free, received)
        free = working_after(start, rng.uniform(0.6, 1.4) * service * 60)
        late += free.date() != DAY
        lines.append(event(dossier, "received", 0, received))
        lines.append(event(dossier, "resolved", 1, free))
    with open(path, "a", encoding="utf-8") as f:
        for e in sorted(lines, key=lambda e: (e["occurredAt"], e["eventId"])):
            f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"District 1, 16/6/2022: {morning} dossiers in the morning and {count} certifications 13:00–14:00, served in order one every "
          f"~{service:g} working minutes; {late} resolved on Friday morning, late")


if __name__ == "__main__":
    main()
