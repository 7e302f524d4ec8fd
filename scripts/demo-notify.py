#!/usr/bin/python3
"""What `sameday notify` delivered in the demonstration (scripts/demo.sh): counts, and District 1's messages.

Reads the SMTP sink's messages (NOTIFY/sink-mail/<n>.eml) and the chat sink's posts (NOTIFY/sink-chat/<n>.json),
copies those of District 1's people (addresses @quan1.hcmc.example, and the District 1 Telegram chat) into
NOTIFY/quan1/, and prints the first digest of dossiers at risk as its reader sees it: sender, recipient, subject, the
plain-text part, and the first that names an at_risk dossier with its predicted completion.
Counts what the notifier still holds for the next working session (its store, NOTIFY/state/notify.sqlite).
Python's standard library only.
"""

import email
import email.policy
import glob
import json
import os
import re
import shutil
import sqlite3
import sys


def numbered(folder, suffix):
    files = glob.glob(os.path.join(folder, "*" + suffix))
    return sorted(files, key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))


def main():
    notify = sys.argv[1]
    quan1 = os.path.join(notify, "quan1")
    os.makedirs(quan1, exist_ok=True)
    mails = numbered(os.path.join(notify, "sink-mail"), ".eml")
    chats = numbered(os.path.join(notify, "sink-chat"), ".json")
    first = None
    forecast = None  # the first District 1 e-mail with an at_risk dossier (the queue forecast, docs/rules.md §5.6)
    afternoon = False
    kept = 0
    people = set()
    for path in mails:
        with open(path, "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        rcpt = str(message.get("X-Sink-Rcpt-To", "")).strip()
        people.add(rcpt)
        if rcpt.endswith("@quan1.hcmc.example"):
            kept += 1
            shutil.copyfile(path, os.path.join(quan1, f"{kept:04d}.eml"))
            # The first digest of dossiers at risk (a daily summary can come first: on the alerts' clock a fast
            # shard reaches 16:30 of a day before the slower ones have written its figures).
            if first is None and "Quận 1" in str(message["Subject"]) and "tổng hợp" not in str(message["Subject"]):
                first = message
            # District 1's busy afternoon (scripts/demo-congestion.py) before any other at_risk.
            text = message.get_body(preferencelist=("plain",)).get_content()
            if "Dự kiến xong" in text and (forecast is None or "760-220621-" in text and not afternoon):
                forecast = message
                afternoon = "760-220621-" in text
    for i, path in enumerate(chats, 1):
        shutil.copyfile(path, os.path.join(quan1, f"chat-{i:04d}.json"))
    alerts = sum(len(str(email.message_from_binary_file(open(p, "rb"), policy=email.policy.default)
                         .get("X-SameDay-Alerts", "")).split(",")) for p in mails)
    print(f"{len(mails)} e-mails to {len(people)} people ({alerts} alert lines), {len(chats)} chat messages; "
          f"District 1's: {kept} e-mails and {len(chats)} chat messages in {quan1}/")
    try:
        db = sqlite3.connect(os.path.join(notify, "state", "notify.sqlite"))
        owed, held = db.execute("SELECT count(*), count(DISTINCT recipient) FROM owed").fetchone()
        failed = db.execute("SELECT count(*) FROM message WHERE status = 'failed'").fetchone()[0]
        print(f"still owed, held for the next working session: {owed} alerts to {held} people; failed: {failed}")
    except sqlite3.Error as error:
        print(f"notifier store not readable: {error}")
    if first is not None:
        print(f"-- the first digest to District 1 ({quan1}/): From: {first['From']}; To: {first['To']}")
        print(f"   Subject: {first['Subject']}")
        plain = first.get_body(preferencelist=("plain",)).get_content()
        for line in plain.splitlines()[:14]:
            print("   " + line)
    if forecast is not None:
        print(f"-- an at_risk dossier in District 1's e-mail (Subject: {forecast['Subject']}):")
        lines = forecast.get_body(preferencelist=("plain",)).get_content().splitlines()
        for i, line in enumerate(lines):
            if "Dự kiến xong" in line:
                for shown in lines[max(0, i - 3):i + 1]:
                    print("   " + shown)
                break
    else:
        print("-- no at_risk dossier reached District 1's e-mail in this run")
    if chats:
        with open(chats[0], encoding="utf-8") as f:
            post = json.load(f)
        body = json.loads(post["body"])
        print(f"-- the first Telegram message (chat {body.get('chat_id')}):")
        for line in body.get("text", "").splitlines()[:6]:
            print("   " + line)


if __name__ == "__main__":
    main()
