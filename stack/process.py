"""One of the stack's commands as a child process: `python -m hq run`, `python -m edge run`.

`Service` starts the command, reads its output line by line (kept, the last
few hundred, for failure messages; copied to a log file when one is named),
and lets the caller wait for a line that says the process has reached a
point: "HQ running", "node running", "ingest connected". A process that
dies while it is waited for fails the wait at once with its last lines.
The deployment, the tests and the benchmarks all start processes this way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path

READY_TIMEOUT_S = 300.0  # a cold Numba cache (a fresh clone) compiles for tens of seconds


class Service:
    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None,
                 log_path: Path | None = None,
                 on_line: Callable[[str], None] | None = None):  # fmt: skip
        """`args` follow `python -m`; `env` is added to this process's environment;
        `on_line` sees every line of output (on the reading thread)."""
        self.name = name
        self.args = list(args)
        self.env = dict(env or {})
        self.log_path = log_path
        self.on_line = on_line
        self.lines: deque[str] = deque(maxlen=400)
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> Service:
        self.lines.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", *self.args], env={**os.environ, **self.env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        return self

    def wait_for_line(self, text: str, timeout: float = READY_TIMEOUT_S) -> Service:
        """Wait until a line of output holds `text`; RuntimeError with the last lines if the
        process ends or the time runs out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise RuntimeError(f"{self.name} did not say {text!r}:\n{self.tail()}")
                self._changed.wait(min(remaining, 0.5))
        return self

    def tail(self, n: int = 40) -> str:
        return "".join(list(self.lines)[-n:])

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the commands stop cleanly on it), then SIGKILL if it takes too long."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash or a power cut."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self._reader.join(5)

    def _read(self, process: subprocess.Popen) -> None:
        log = open(self.log_path, "a") if self.log_path is not None else None  # noqa: SIM115
        try:
            for line in process.stdout:
                if log is not None:
                    log.write(line)
                    log.flush()
                if self.on_line is not None:
                    self.on_line(line)
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        finally:
            if log is not None:
                log.close()
            with self._changed:
                self._changed.notify_all()


def wait_http_ready(url: str, service: Service | None = None, timeout: float = 60.0) -> None:
    """Wait until `url` answers 200 (an API's /readyz); RuntimeError, with the service's
    last lines when there is one, if it does not in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service is not None and not service.running():
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.2)
    lines = "" if service is None else f":\n{service.tail()}"
    raise RuntimeError(f"{url} did not answer 200 in {timeout:g} s{lines}")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
