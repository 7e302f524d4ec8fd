#!/usr/bin/python3
"""A throwaway SMTP server on loopback for the e-mail channel's tests (docs/notify.md, "Channels").

Listens on 127.0.0.1 (port 0: one the system picks), writes the port it got to DIR/port, and stores every message it
accepts as DIR/<n>.eml, n = 1, 2, ...: the data as received (CRLF line ends, dot-stuffing undone), preceded by two
lines the sink adds, `X-Sink-Mail-From: <sender>` and `X-Sink-Rcpt-To: <recipient>, ...`, the envelope the client
gave (the tests check that the recipient came from the envelope, not from a header).

Refusals on demand: each line of DIR/refuse is `CODE ADDRESS` (e.g. `550 nobody@example.test` or
`451 busy@example.test`); a RCPT TO for that address is answered with that code. The file is read at every RCPT, so a
test can change it while the sink runs.

Debian's python3-aiosmtpd (run with /usr/bin/python3, whose dist-packages hold it). Stops on SIGTERM or SIGINT, and
by itself after --lifetime seconds so a crashed test leaves nothing running for long.
"""

import argparse
import asyncio
import os
import signal

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    def refusal(self, address):
        try:
            with open(os.path.join(self.folder, "refuse"), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[1].lower() == address.lower() and parts[0].isdigit():
                return parts[0]
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.refusal(address)
        if code is not None:
            return f"{code} refused by the test sink: {address}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        head = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode("ascii", "backslashreplace")
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        final = os.path.join(self.folder, f"{self.count}.eml")
        temporary = final + ".part"
        with open(temporary, "wb") as f:
            f.write(head + data)
        os.rename(temporary, final)
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where messages, the port file and the refuse file are")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--lifetime", type=float, default=600, help="seconds before the sink stops by itself")
    options = parser.parse_args()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sink = Sink(options.dir)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(sink, hostname="sink.localhost"), "127.0.0.1", options.port)
    )
    port = server.sockets[0].getsockname()[1]
    port_file = os.path.join(options.dir, "port")
    with open(port_file + ".part", "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.rename(port_file + ".part", port_file)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, loop.stop)
    loop.call_later(options.lifetime, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


if __name__ == "__main__":
    main()
