"""The emulator plinth's tests run against: moto's server, started exactly as
`python3 -m moto.server` starts it, plus two things a test harness needs.

- `--parent-pid`: the server exits when the test process that started it is gone, so a
  killed test run never leaves emulators behind.
- `--latency-ms`: every request waits this long first. Real AWS answers in tens of
  milliseconds and moto in about one; tests that must interrupt plinth in the middle of an
  apply (kill -9, Ctrl-C) use it to make "the middle" last long enough to hit.
- `--faults throttle=P,error=P,lost=P,hang=P,latency=A-Bms --seed N`: answers like a busy,
  flaky AWS (faults.py): each service's own throttling answer, 500s, answers lost after the
  work was done, requests never answered. `--clean-port` serves the same emulator without
  faults, for the tests' own checks of what exists; `GET /_plinth/faults` on either port
  counts the faults injected so far.

Fidelity corrections (where moto differs from what AWS really does, so that an honest
end-to-end check is impossible) are in fidelity.py, each documented with what AWS does.
"""

import argparse
import os
import sys
import threading
import time

# Set before moto is imported. Certificates are validated after a second instead of never
# (real AWS validates once the DNS records exist, which no emulator can see), and the
# AWS-managed IAM policies exist as they do in every real account.
os.environ.setdefault("MOTO_ACM_VALIDATION_WAIT", "1")
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

import json

from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server, run_simple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fidelity  # noqa: E402,F401  (patches moto on import)
from faults import FaultInjector, Faults, FaultyRequestHandler  # noqa: E402


def exit_with_parent(parent_pid: int) -> None:
    while True:
        try:
            os.kill(parent_pid, 0)
        except OSError:
            os._exit(0)
        time.sleep(0.5)


class Latency:
    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds

    def __call__(self, environ, start_response):
        if self.seconds > 0 and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            time.sleep(self.seconds)
        return self.app(environ, start_response)


class FaultCounts:
    """`GET /_plinth/faults`: how many of each fault were injected."""

    def __init__(self, app, faults: Faults | None):
        self.app = app
        self.faults = faults

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_plinth/faults":
            body = json.dumps(self.faults.counts if self.faults else {}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--faults", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clean-port", type=int)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.parent_pid:
        threading.Thread(target=exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = Latency(moto_app, args.latency_ms / 1000.0)
    faults = Faults(args.faults, args.seed) if args.faults else None
    if args.clean_port:
        clean = make_server(args.host, args.clean_port, FaultCounts(moto_app, faults), threaded=True)
        threading.Thread(target=clean.serve_forever, daemon=True).start()
    if faults:
        app = FaultInjector(app, faults)
    run_simple(args.host, args.port, FaultCounts(app, faults), threaded=True,
               request_handler=FaultyRequestHandler)


if __name__ == "__main__":
    sys.exit(main())
