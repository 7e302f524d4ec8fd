#!/usr/bin/python3
"""Congestion the `congested` scenario does not make, written independently of it, to check that the queue forecast
(`at_risk`, docs/rules.md §5.6) is not fitted to one generator. Reads the unit and procedure of each dossier from a
`sameday simulate --scenario congested` file (only to have real unit and procedure codes) and writes new times:

  afternoon   staff serve in order of receipt, but on one working day in three half of them leave at 14:00
              (a meeting, a training): the afternoon pace drops to a third without warning.
  shuffled    a desk that picks any dossier of the queue, not the oldest, at a capacity a little under the load.
  batches     a desk that works in order but records its results in batches, once an hour.

Usage: congestion_variants.py PATTERN IN.jsonl OUT.jsonl [SEED]
Then:  sameday-bench predict --events OUT.jsonl --config deploy/config/hcmc-2022

Working days are Monday to Friday, sessions 07:30–11:30 and 13:00–17:00, intake until 16:00 (the HCMC standard
calendar; holidays of the month are skipped by taking the days the input has receptions on). Python's standard
library only.
"""

import datetime
import json
import random
import sys

TZ = datetime.timezone(datetime.timedelta(hours=7))
SESSIONS = [(7 * 3600 + 1800, 11 * 3600 + 1800), (13 * 3600, 17 * 3600)]


def working_add(day, second, amount):
    """(day index, second of day) after `amount` working seconds, sessions only; `day` indexes `days`."""
    while True:
        for start, end in SESSIONS:
            if second < end:
                second = max(second, start)
                if second + amount <= end:
                    return day, second + amount
                amount -= end - second
                second = end
        day += 1
        second = 0


def main():
    pattern, source, target = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 7)
    by_unit = {}
    days = set()
    with open(source, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e["type"] != "received":
                continue
            t = datetime.datetime.fromisoformat(e["occurredAt"])
            days.add(t.date())
            by_unit.setdefault(e["unit"], []).append((t, e["dossier"], e["procedure"]))
    days = sorted(days)
    index = {d: i for i, d in enumerate(days)}
    out = []

    def emit(dossier, unit, procedure, received, resolved):
        for seq, (kind, at) in enumerate((("received", received), ("resolved", resolved))):
            event = {
                "schema": "sameday.dossier-event/1", "eventId": f"{dossier}#v{seq}", "dossier": dossier,
                "unit": unit, "procedure": procedure, "type": kind, "occurredAt": at.isoformat(), "seq": seq,
                "source": f"simulate:variant-{pattern}",
            }
            event["channel" if kind == "received" else "outcome"] = "direct" if kind == "received" else "approved"
            out.append((at, len(out), event))

    def instant(day, second):
        d = days[day] if day < len(days) else days[-1] + datetime.timedelta(days=day - len(days) + 1)
        return datetime.datetime.combine(d, datetime.time(0), TZ) + datetime.timedelta(seconds=second)

    for unit, received in sorted(by_unit.items()):
        received.sort()
        per_day = len(received) / len(days)
        capacity = per_day / 7.0 * rng.uniform(0.9, 1.3)  # dossiers per working hour, about the load
        slow_days = {i for i in range(len(days)) if rng.random() < 1 / 3}
        queue = []
        clock = (0, 0)
        i = 0
        while i < len(received) or queue:
            # Everything received by the clock joins the queue.
            while i < len(received):
                t, dossier, procedure = received[i]
                at = (index[t.date()], t.hour * 3600 + t.minute * 60 + t.second)
                if at > clock:
                    break
                queue.append((at, dossier, procedure, t))
                i += 1
            if not queue:
                t = received[i][0]
                clock = (index[t.date()], t.hour * 3600 + t.minute * 60 + t.second)
                continue
            pace = capacity
            if pattern == "afternoon" and clock[0] in slow_days and clock[1] >= 14 * 3600:
                pace = capacity / 3
            if pattern == "shuffled":
                pick = rng.randrange(len(queue))
            else:
                pick = 0
            _, dossier, procedure, t = queue.pop(pick)
            clock = working_add(clock[0], clock[1], int(rng.expovariate(pace) * 3600) + 60)
            done = instant(*clock)
            if pattern == "batches":
                # Recorded at the next full hour of the session.
                hour = (clock[1] // 3600 + 1) * 3600
                done = instant(clock[0], min(hour, 17 * 3600 - 1) if clock[1] < 17 * 3600 else clock[1])
            emit(dossier, unit, procedure, t, max(done, t + datetime.timedelta(seconds=1)))
    out.sort(key=lambda x: (x[0], x[1]))
    with open(target, "w", encoding="utf-8") as f:
        for _, _, event in out:
            f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{pattern}: {len(out) // 2} dossiers at {len(by_unit)} units written to {target}")


if __name__ == "__main__":
    main()
