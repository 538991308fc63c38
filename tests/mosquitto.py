"""A real mosquitto for a test: started on a free port with the test's config."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mosquitto:
    """One broker process; `stop` and `start` again for a restart on the same port."""

    def __init__(self, config_file: Path, port: int):
        if shutil.which("mosquitto") is None:
            pytest.fail("mosquitto is not installed: run `make test`, which installs it")
        self.config_file = config_file
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.process.stderr.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
