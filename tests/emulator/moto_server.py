"""The emulator plinth's tests run against: moto's server, started exactly as
`python3 -m moto.server` starts it, plus two things a test harness needs.

- `--parent-pid`: the server exits when the test process that started it is gone, so a
  killed test run never leaves emulators behind.
- `--latency-ms`: every request waits this long first. Real AWS answers in tens of
  milliseconds and moto in about one; tests that must interrupt plinth in the middle of an
  apply (kill -9, Ctrl-C) use it to make "the middle" last long enough to hit.

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

from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fidelity  # noqa: E402,F401  (patches moto on import)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.parent_pid:
        threading.Thread(target=exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Latency(app, args.latency_ms / 1000.0), threaded=True)


if __name__ == "__main__":
    sys.exit(main())
