"""Every long-running command stops all it started on SIGTERM (as `timeout`, a service
manager or a CI runner stops it) as on Ctrl-C: the whole demo with its broker, HQ, node
and simulator processes, and HQ, the node and the simulator each on their own."""

import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def still_running(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(process.cmdline()))
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_for_output(process: subprocess.Popen, text: str, timeout_s: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} in time:\n{''.join(lines[-40:])}")


def test_the_demo_stops_everything_it_started_on_sigterm(tmp_path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "stack", "demo", "--scenario",
         str(PROJECT_ROOT / "configs" / "scenarios" / "small.toml"), "--headless",
         "--no-mast", "--camera", "320x240@2", "--flight", "", "--folder", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    started: list[psutil.Process] = []
    try:
        wait_for_output(demo, "operator page", 300)
        started = descendants(demo.pid)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        # The parts really are child processes: the broker, HQ, the node, the simulator.
        for part in ("mosquitto", "hq run", "edge run", "sim_hw replay", "sim_hw camera"):
            assert part in names, names
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=120)
        assert demo.returncode == 0, output[-2000:]
        assert "stopped; everything it wrote is in" in output
        deadline = time.monotonic() + 10
        while still_running(started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert still_running(started) == []
    finally:
        for process in [*started, psutil.Process(demo.pid)] if demo.poll() is None else started:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


def command_line(command: str, folder) -> tuple[list[str], str, str]:
    """(arguments after `python -m`, the line that says it runs, the line of its clean-up)."""
    if command == "sim_hw replay":
        tlog = folder / "flight.tlog"
        subprocess.run([sys.executable, "-m", "sim_hw", "generate", "--out", str(tlog),
                        "--duration", "120"], check=True, capture_output=True)  # fmt: skip
        return ["sim_hw", "replay", str(tlog), "--to", "udpout:127.0.0.1:9"], "", "sent "
    config = folder / "config.toml"
    if command == "hq run":
        config.write_text(f'origin = [22.84, 14.13, 620.0]\nborder = [[23.5, 12.0], [22.8, 14.2]]\n'
                          f'home = [22.84, 14.13]\ndatabase = "{folder / "hq.db"}"\n'
                          '[broker]\nport = 9\n')  # fmt: skip
        return ["hq", "run", "--config", str(config)], "HQ running", "HQ stopped"
    config.write_text('site = "s"\nnode = "n"\n[post]\nlat = 22.8\nlon = 14.1\nalt = 600.0\n'
                      f'[uplink]\nport = 9\noutbox = "{folder / "outbox.db"}"\n')  # fmt: skip
    return ["edge", "run", "--config", str(config)], "node running", "node stopped"


@pytest.mark.parametrize("command", ["hq run", "edge run", "sim_hw replay"])
def test_a_command_stops_cleanly_on_sigterm(tmp_path, command):
    args, ready, done = command_line(command, tmp_path)
    process = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        if ready:
            wait_for_output(process, ready, 300)  # a cold Numba cache compiles first
        else:
            time.sleep(3.0)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-2000:]
    assert done in output  # it went through its own clean-up, as on Ctrl-C
