"""gunicorn settings for Cunguan's web processes (see docs/deploy.md).

    .venv/bin/gunicorn -c deploy/gunicorn.conf.py wsgi:app

Everything can be overridden from the environment (CUNGUAN_BIND, CUNGUAN_WEB_WORKERS, CUNGUAN_WEB_THREADS,
CUNGUAN_FORWARDED_ALLOW_IPS) or on the command line (`-b`, `-w` win over this file).
Logs: gunicorn's own messages and one access line per request are JSON lines on stderr, like the app's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gunicorn import glogging

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `app.platform.logs` for the JSON formatter, whatever the current directory
    sys.path.insert(0, str(ROOT))

# --- sockets and processes ---------------------------------------------------------------------
bind = os.environ.get("CUNGUAN_BIND", "127.0.0.1:8000")
# Processes for the cores (PDF rendering is CPU-bound: more processes, not threads, use more cores), and a
# few threads in each (gthread) so that a process keeps working while a request waits on the database: a
# bank callback spends most of its time waiting for its commit to reach the disk, and with one thread per
# process only `workers` commits could be in flight (bench/callbacks.py, acknowledged callbacks: 4 processes
# × 4 threads answered 221/s where 4 × 1 answered 183/s). Database connections ≈ workers × threads (the
# pool keeps up to 5 per process, 15 at most). CUNGUAN_WEB_THREADS=1 gives plain sync workers.
# One process more than cores: on the 2-core machine, quiet, inline callbacks (bench/callbacks.py --mode inline,
# 2026-12-05) answered 460-499/s with 3 x 4 against 409-442/s with 4 x 4 (and 340/s with 6 x 1): more processes
# than that only contend for the two cores; PDF rendering still has a process per core and one spare.
workers = int(os.environ.get("CUNGUAN_WEB_WORKERS", str((os.cpu_count() or 1) + 1)))
threads = int(os.environ.get("CUNGUAN_WEB_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
# The app opens its database pool after the fork: never share connections between processes.
preload_app = False
backlog = 512

# --- timeouts and graceful shutdown --------------------------------------------------------------
# A request may render and sign an agreement PDF (about a second, more under load).
timeout = 60
# SIGTERM: stop accepting, let in-flight requests (a callback being booked) finish for up to this long.
# A callback cut off here was not committed (one transaction) and the bank, which got no 200, resends.
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (memory from fonts and PDFs), staggered so they never restart together.
max_requests = 2000
max_requests_jitter = 200
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# --- behind a reverse proxy ----------------------------------------------------------------------
# Trust X-Forwarded-* only from the proxy's address(es).
forwarded_allow_ips = os.environ.get("CUNGUAN_FORWARDED_ALLOW_IPS", "127.0.0.1")
limit_request_line = 4094
limit_request_fields = 100

# --- logs ----------------------------------------------------------------------------------------
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("CUNGUAN_LOG_LEVEL", "info")
capture_output = False  # the app logs to stderr itself (JSON lines)


class JsonLogger(glogging.Logger):
    """gunicorn's logger with JSON lines: its own messages through the app's formatter, and an access line
    built as a dict (not a format string), so quotes in a path or user agent cannot break the JSON."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from app.platform.logs import JsonFormatter

        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        headers = {str(name).lower(): value for name, value in (resp.headers or [])}
        status = str(resp.status).split(" ", 1)[0]
        fields = {
            "request_id": headers.get("x-request-id"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),  # no query string: it is not needed and could carry personal data
            "status": int(status) if status.isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote": environ.get("REMOTE_ADDR"),
            "user_agent": (environ.get("HTTP_USER_AGENT") or "")[:200],
            "pid": os.getpid(),
        }
        try:
            self.access_log.info("request", extra={k: v for k, v in fields.items() if v is not None})
        except Exception:  # never let a log line break a response
            self.error_log.exception("access log failed")


logger_class = JsonLogger
