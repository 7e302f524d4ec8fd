#!/usr/bin/python3
"""A stand-in for the chat APIs on loopback (Telegram's sendMessage, a Zalo-style message API, a generic hook), for
the notifier's tests, benchmark and demonstration (docs/notify.md, "Channels").

Listens on 127.0.0.1 (port 0: one the system picks), writes the port it got to DIR/port, and keeps every request it
answers with 200 as DIR/<n>.json: {"path", "headers", "body"} (body as text), n = 1, 2, ... Those are the
deliveries; a request it refuses or never answers is not kept.

Answers on demand: DIR/script holds one word per line, taken one per request, first line first (the file is
rewritten without it):
  429      answer 429 Too Many Requests with Retry-After: 1
  500      answer 500
  hang     read the request and never answer (the client's timeout ends it); not kept
  ok       answer 200
With no line left, 200. A 200 says {"ok": true, "result": {}} (Telegram) and {"error": 0} (Zalo) at once.

Python's standard library only. Stops on SIGTERM or SIGINT, and by itself after --lifetime seconds.
"""

import argparse
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"count": 0}
MAX_BODY = 1 << 20


def next_answer(folder):
    path = os.path.join(folder, "script")
    with LOCK:
        try:
            with open(path, encoding="utf-8") as f:
                lines = [line.strip() for line in f.read().splitlines() if line.strip()]
        except FileNotFoundError:
            return "ok"
        if not lines:
            return "ok"
        with open(path + ".part", "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines[1:]))
        os.rename(path + ".part", path)
        return lines[0]


def keep(folder, path, headers, body):
    with LOCK:
        STATE["count"] += 1
        final = os.path.join(folder, f"{STATE['count']}.json")
    record = {"path": path, "headers": headers, "body": body}
    with open(final + ".part", "w", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False)
    os.rename(final + ".part", final)


class Handler(BaseHTTPRequestHandler):
    folder = "."
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        answer = next_answer(self.folder)
        if answer == "hang":
            time.sleep(3600)
            return
        if answer == "429":
            self.reply(429, {"ok": False, "error_code": 429, "description": "Too Many Requests"}, {"Retry-After": "1"})
            return
        if answer == "500":
            self.reply(500, {"ok": False, "description": "Internal Server Error"})
            return
        keep(self.folder, self.path, {k: v for k, v in self.headers.items()}, body)
        self.reply(200, {"ok": True, "result": {}, "error": 0})

    def reply(self, status, document, headers=None):
        data = json.dumps(document).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where requests, the port file and the script file are")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--lifetime", type=float, default=600, help="seconds before the sink stops by itself")
    options = parser.parse_args()
    os.makedirs(options.dir, exist_ok=True)
    Handler.folder = options.dir
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.daemon_threads = True
    port_file = os.path.join(options.dir, "port")
    with open(port_file + ".part", "w", encoding="ascii") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(port_file + ".part", port_file)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    timer = threading.Timer(options.lifetime, stop)
    timer.daemon = True
    timer.start()
    server.serve_forever()


if __name__ == "__main__":
    main()
