"""checks/alert-sink.py: the webhook receiver of the three-VM test.

Alertmanager posts its notifications (JSON) to the topology's
monitoring.alertReceiver.webhookUrl; this server accepts them on that address and
appends each body, as one line, to --out. The test then waits until an alert's name
appears there: proof that the alert went all the way from the rules to the receiver.

Usage: python3 alert-sink.py --address 10.42.0.10 --port 9099 --out /var/lib/alert-sink/alerts.jsonl
"""

import argparse
import http.server
import json


class Sink(http.server.BaseHTTPRequestHandler):
    """Answers 200 to every POST after recording its body; anything else is 405."""

    def do_POST(self):  # noqa: N802 (the name http.server dispatches to)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            # Re-serialised compactly, so every notification is one line for grep.
            line = json.dumps(json.loads(body), separators=(",", ":"))
        except ValueError:
            self.send_error(400, "expected a JSON body")
            return
        with open(self.server.out, "a", encoding="utf-8") as out:
            out.write(line + "\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        self.send_error(405, "POST notifications here")

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    server = http.server.HTTPServer((args.address, args.port), Sink)
    server.out = args.out
    server.serve_forever()


if __name__ == "__main__":
    main()
