"""A scenario played live: its drones' telemetry and cameras in the present, as hardware.

`LiveScenario` writes the scenario with time 0 a little in the past (so it
starts where something happens), then starts one `sim_hw replay --wall-clock`
per drone towards a MAVLink address and one `sim_hw camera --serve --epoch`
per camera. Telemetry and frames both carry the UTC of the wall clock, as a
real drone's and camera's would, so an edge node can match each frame with
the pose of its moment. The demo and the whole-stack tests use it; each part
is an ordinary simulator command, so a directorate can run the same by hand.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sim_hw.camera.spec import THERMAL_KELVIN_PER_LEVEL
from sim_hw.scenario import load_config
from sim_hw.truth import write_scenario


@dataclass(frozen=True)
class LiveCamera:
    """A drone's gimbal camera (`sysid`) or a fixed camera on a mast (`mast`: lat, lon,
    height over the ground m, pan deg from north, tilt deg, negative down), served as
    MJPEG at http://host:port/video.mjpg; or (`klv`, drones only) sent as H.264 MPEG-TS
    with MISB ST 0601 metadata to udp://host:port, as an aircraft without MAVLink does."""

    sysid: int | None
    port: int
    mode: str = "eo"
    width: int = 1280
    height: int = 720
    fps: float = 25.0
    hfov_deg: float = 60.0
    host: str = "127.0.0.1"
    seed: int = 0
    # The scenario's own clock decides day or night ("scene"); played in the present, that
    # clock is today's, so a night scenario may need "night" to stay one.
    lighting: str = "scene"
    mast: tuple[float, float, float, float, float] | None = None
    klv: bool = False

    def __post_init__(self):
        if (self.sysid is None) == (self.mast is None):
            raise ValueError("a live camera is on a drone (sysid) or on a mast, one of the two")
        if self.klv and self.sysid is None:
            raise ValueError("a KLV camera is a drone's: its metadata is the drone's pose")

    @property
    def name(self) -> str:
        mount = "mast" if self.mast is not None else f"drone-{self.sysid}"
        return f"{mount}-{self.mode}" + ("-klv" if self.klv else "")

    @property
    def kelvin_per_level(self) -> float | None:
        """The thermal core's calibration, as its data sheet would give it; None for EO."""
        return THERMAL_KELVIN_PER_LEVEL if self.mode == "thermal" else None

    @property
    def url(self) -> str:
        if self.klv:
            return f"udp://{self.host}:{self.port}"
        return f"http://{self.host}:{self.port}/video.mjpg"


class LiveScenario:
    def __init__(self, config_path: str | Path, out_dir: str | Path, skip_s: float = 0.0,
                 mavlink: dict[int, str] | None = None, cameras: list[LiveCamera] = (),
                 lead_s: float = 5.0, recorded: dict[str, str] | None = None,
                 faults: str | Path | None = None):  # fmt: skip
        """`mavlink` maps a drone's system id to a pymavlink address for its telemetry
        (udpout:127.0.0.1:14550); `skip_s` is the scenario time playing now; `recorded`
        maps real flight logs to addresses, replayed in a loop with their UTC moved to now;
        `faults` is a fault plan (configs/faults/*.toml) for the drones' links."""
        self.config_path = Path(config_path)
        self.config = load_config(self.config_path)
        self.out_dir = Path(out_dir)
        self.skip_s = skip_s
        self.mavlink = dict(mavlink or {})
        self.cameras = list(cameras)
        self.lead_s = lead_s
        self.recorded = dict(recorded or {})
        self.faults = faults
        self.epoch: float | None = None
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> LiveScenario:
        """Write the scenario and start every part; if one fails to start, stop the others."""
        self.epoch = time.time() - self.skip_s
        write_scenario(self.config.starting_at(self.epoch), self.out_dir)
        try:
            for name in self.part_names():
                self._spawn(name)
        except BaseException:
            self.stop()
            raise
        return self

    def part_names(self) -> list[str]:
        """Each running part's name: its log is OUT/NAME.log."""
        return ([f"replay-sysid{sysid}" for sysid in self.mavlink]
                + [f"replay-recorded-{k}" for k in range(len(self.recorded))]
                + [f"camera-{camera.name}" for camera in self.cameras])  # fmt: skip

    def restart(self, name: str, down_s: float = 0.0) -> None:
        """Kill one part (a camera stream that drops, a radio that dies) and start it again
        after `down_s`; a camera comes back at the wall clock's frame."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()
        time.sleep(down_s)
        self._spawn(name)

    @property
    def truth_path(self) -> Path:
        return self.out_dir / "truth.jsonl"

    def failed(self) -> list[str]:
        """The commands of parts that exited early (their output is in OUT/NAME.log)."""
        return [" ".join(p.args) for p in self.processes.values() if p.poll() not in (None, 0)]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = {}

    def __enter__(self) -> LiveScenario:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _arguments(self, name: str) -> list[str]:
        """The simulator command of part `name`, as of now (a camera starts at the present)."""
        for sysid, address in self.mavlink.items():
            if name == f"replay-sysid{sysid}":
                tlog = self.out_dir / f"{self.config.name}-sysid{sysid}.tlog"
                faults = [] if self.faults is None else ["--faults", str(self.faults)]
                return ["replay", str(tlog), "--to", address, "--wall-clock",
                        "--lead", str(self.lead_s), *faults]  # fmt: skip
        for k, (tlog, address) in enumerate(self.recorded.items()):
            if name == f"replay-recorded-{k}":
                return ["replay", str(tlog), "--to", address, "--restamp", "--loop"]
        for camera in self.cameras:
            if name == f"camera-{camera.name}" and camera.klv:
                return ["klv-video", str(self.config_path), "--sysid", str(camera.sysid),
                        "--udp", f"{camera.host}:{camera.port}", "--epoch", repr(self.epoch),
                        "--mode", camera.mode, "--width", str(camera.width),
                        "--height", str(camera.height), "--fps", str(camera.fps),
                        "--hfov", str(camera.hfov_deg), "--seed", str(camera.seed),
                        "--lighting", camera.lighting,
                        "--start", str(max(0.0, time.time() - self.epoch))]  # fmt: skip
            if name == f"camera-{camera.name}":
                mount = (["--sysid", str(camera.sysid)] if camera.mast is None
                         else ["--mast", ",".join(map(repr, camera.mast))])  # fmt: skip
                return ["camera", str(self.config_path), *mount,
                        "--serve", f"{camera.host}:{camera.port}", "--epoch", repr(self.epoch),
                        "--mode", camera.mode, "--width", str(camera.width),
                        "--height", str(camera.height), "--fps", str(camera.fps),
                        "--hfov", str(camera.hfov_deg), "--seed", str(camera.seed),
                        "--lighting", camera.lighting,
                        "--start", str(max(0.0, time.time() - self.epoch))]  # fmt: skip
        raise KeyError(f"no part named {name!r}; parts: {self.part_names()}")

    def _spawn(self, name: str) -> None:
        with open(self.out_dir / f"{name}.log", "a") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "sim_hw", *self._arguments(name)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
