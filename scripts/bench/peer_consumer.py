#!/usr/bin/env python3
"""The yardstick for `sameday-bench pipeline --prefilled`: a plain Python + pika + sqlite3 consumer.

What a competent engineer would write in an afternoon to drain a SameDay shard queue into SQLite:

- pika ``BlockingConnection``, ``basic_qos(prefetch_count=PREFETCH)`` (the worker's default, 1000), manual acks;
- for each delivery: ``json.loads``, check the canonical event's required fields (``schema``, ``eventId``,
  ``dossier``, ``unit``, ``procedure``, ``type``, ``occurredAt``, ``source`` as in ``Sources/SameDayCore/Event.swift``,
  and the type is one of the known types), dedupe by ``(dossier, eventId)`` with ``INSERT OR IGNORE`` into an
  ``events`` table that keeps the body as it arrived, and upsert the dossier row (code, unit, last type, event count,
  updated at) for an event that is new;
- SQLite in WAL mode with ``PRAGMA synchronous=FULL`` (like the worker), one transaction per ``BATCH`` deliveries
  (500) or when the queue goes idle, then ``basic_ack(multiple=True)`` for everything that commit made durable:
  ack strictly after commit, as the worker does.

It stops once it has handled EXPECTED deliveries (or after the queue stayed empty for ``--idle-timeout`` seconds)
and prints one JSON line: ``{"events": handled, "new_events": ..., "duplicates": ..., "rejected": ...,
"seconds": s, "cpu_seconds": c, "events_per_s": ...}``. ``seconds`` runs from just before the connection opens to the
last ack; ``cpu_seconds`` is the process's CPU time (user and system) over the same span.

With ``--ready-file PATH`` it creates PATH once connected, so a caller measuring end to end (``sameday-bench pipeline
--peer-end-to-end``) starts publishing then, leaving the interpreter's start and ``import pika`` out.

Usage: peer_consumer.py AMQP_URL QUEUE EXPECTED DB_PATH [--prefetch N] [--batch N] [--idle-timeout S]
       [--ready-file PATH]
"""

import argparse
import json
import sqlite3
import sys
import time

import pika

SCHEMA = "sameday.dossier-event/1"
REQUIRED = ("eventId", "dossier", "unit", "procedure", "type", "occurredAt", "source")
TYPES = frozenset(
    (
        "submitted", "received", "refused", "transferred", "supplement_requested", "supplement_received",
        "fee_requested", "fee_paid", "rescheduled", "resolved", "returned", "withdrawn", "stopped", "extended",
    )
)


def valid(event):
    if not isinstance(event, dict) or event.get("schema") != SCHEMA:
        return False
    for field in REQUIRED:
        if not isinstance(event.get(field), str):
            return False
    return event["type"] in TYPES


def open_db(path):
    db = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS events ("
        " id INTEGER PRIMARY KEY, dossier TEXT NOT NULL, event_id TEXT NOT NULL, body BLOB NOT NULL,"
        " UNIQUE(dossier, event_id))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS dossiers ("
        " code TEXT PRIMARY KEY, unit TEXT NOT NULL, last_type TEXT NOT NULL, events INTEGER NOT NULL,"
        " updated_at TEXT NOT NULL)"
    )
    return db


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("queue")
    parser.add_argument("expected", type=int)
    parser.add_argument("db")
    parser.add_argument("--prefetch", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--idle-timeout", type=float, default=30.0)
    parser.add_argument("--ready-file")
    args = parser.parse_args()

    db = open_db(args.db)
    insert_event = "INSERT OR IGNORE INTO events (dossier, event_id, body) VALUES (?, ?, ?)"
    upsert_dossier = (
        "INSERT INTO dossiers (code, unit, last_type, events, updated_at) VALUES (?, ?, ?, 1, ?)"
        " ON CONFLICT(code) DO UPDATE SET unit = excluded.unit, last_type = excluded.last_type,"
        " events = events + 1, updated_at = excluded.updated_at"
    )

    start = time.monotonic()
    cpu_start = time.process_time()
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=args.prefetch)
    if args.ready_file:
        open(args.ready_file, "w").close()

    handled = new = duplicates = rejected = 0
    pending = 0  # deliveries in the open transaction, not yet acked
    last_tag = None
    idle_since = None
    in_transaction = False

    def commit_and_ack():
        nonlocal pending, in_transaction
        if in_transaction:
            db.execute("COMMIT")
            in_transaction = False
        if pending:
            channel.basic_ack(delivery_tag=last_tag, multiple=True)
            pending = 0

    for method, _properties, body in channel.consume(args.queue, inactivity_timeout=0.2):
        if method is None:  # idle: make what we have durable and acknowledge it
            commit_and_ack()
            now = time.monotonic()
            idle_since = idle_since or now
            if now - idle_since >= args.idle_timeout:
                break
            continue
        idle_since = None
        if not in_transaction:
            db.execute("BEGIN")
            in_transaction = True
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if valid(event):
            if db.execute(insert_event, (event["dossier"], event["eventId"], body)).rowcount == 1:
                db.execute(upsert_dossier, (event["dossier"], event["unit"], event["type"], event["occurredAt"]))
                new += 1
            else:
                duplicates += 1
        else:
            rejected += 1  # a real consumer would dead-letter it; acked with its batch here
        handled += 1
        pending += 1
        last_tag = method.delivery_tag
        if pending >= args.batch:
            commit_and_ack()
        if handled >= args.expected:
            break
    commit_and_ack()
    seconds = time.monotonic() - start
    channel.cancel()
    connection.close()
    db.close()
    print(
        json.dumps(
            {
                "events": handled,
                "new_events": new,
                "duplicates": duplicates,
                "rejected": rejected,
                "seconds": round(seconds, 3),
                "cpu_seconds": round(time.process_time() - cpu_start, 3),
                "events_per_s": int(handled / seconds) if seconds > 0 else 0,
            }
        )
    )
    return 0 if handled >= args.expected else 1


if __name__ == "__main__":
    sys.exit(main())
