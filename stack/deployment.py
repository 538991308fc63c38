"""The whole stack on simulated hardware, as separate processes, as it runs in the field.

`Deployment` writes every configuration a real installation would have and
starts, in order: a private mosquitto with per-node credentials and the ACL,
HQ (`python -m hq run`), one edge node per border post of the scenario
(`python -m edge run`; the post's drones and their gimbal cameras), and
the simulator playing the scenario live (`sim_hw.live`). It only writes
files and starts commands, so a directorate can read in `folder` exactly what
to deploy. Of HQ's and the edge's code only their configuration models are used here
(and HQ's broker-config writer): the files are written from the models that load them.
"""

from __future__ import annotations

import getpass
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config import CameraSection, EdgeConfig, MavlinkLink, PostConfig, UplinkSection
from hq.broker import BrokerProcess, free_tcp_port, username, write_broker_config
from hq.config import AlertSection, BrokerSection, HqConfig, PlaceSection
from sim_hw.live import LiveCamera, LiveScenario
from sim_hw.scenario import ScenarioConfig, load_config
from stack.config_files import write_config
from stack.process import Service, free_udp_port
from wire.geo import EnuFrame
from wire.secrets import SecretRef


@dataclass(frozen=True)
class StackOptions:
    skip_s: float = 45.0  # scenario time playing when the simulator starts
    camera_mode: str = "thermal"
    camera_size: tuple[int, int] = (1280, 720)
    camera_fps: float = 10.0
    lighting: str = "night"
    distress_dwell_s: float = 600.0
    place_radius_m: float = 300.0  # around each post: people there are not in distress
    api_port: int | None = None  # HQ's HTTP API; None: ingest only
    mast_camera: bool = False  # a fixed camera at the first post, looking at the border
    mast_height_m: float = 12.0
    mast_hfov_deg: float = 12.0  # a zoomed view: people are pixels wide at a few hundred m
    # A real flight log replayed (looped, its UTC moved to now) to the last post's node on a
    # link of its own, beside the simulated drones: real packet loss and gaps in the picture.
    recorded_flight: Path | None = None
    mavlink_faults: Path | None = None  # a fault plan for the drones' links (configs/faults/)
    # The drones send no MAVLink: each camera is H.264 with MISB ST 0601 KLV over UDP, the
    # pose in its metadata (aircraft that do not speak MAVLink); the posts are KLV-only.
    klv_cameras: bool = False
    # The nodes are told the simulated thermal core's kelvin per level, as a radiometric
    # core's data sheet would; False: they read it as AGC video, warmth unknown.
    thermal_calibrated: bool = True


class Deployment:
    def __init__(self, scenario_path: str | Path, folder: str | Path,
                 options: StackOptions = StackOptions()):  # fmt: skip
        self.scenario_path = Path(scenario_path)
        self.folder = Path(folder)
        self.options = options
        self.scenario: ScenarioConfig = load_config(self.scenario_path)
        self.broker: BrokerProcess | None = None
        self.services: dict[str, Service] = {}
        self.live: LiveScenario | None = None
        self.database = self.folder / "hq" / "hq.db"
        self.passwords: dict[str, str] = {}
        self.broker_port = free_tcp_port()
        # Where the nodes reach the broker: the broker itself, or (tests) a relay in front
        # of it whose link can be cut. Set before `start`.
        self.node_broker_port = self.broker_port
        self._ready_lines: dict[str, str] = {}

    # --- the parts, in the order they start ------------------------------------------------

    def start(self) -> Deployment:
        """Start every part; if one fails to start, stop those already running."""
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_parts(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        site = self.scenario.name
        nodes = [(site, post.name) for post in self.scenario.posts]
        self.passwords = write_broker_config(self.folder / "broker", nodes, port=self.broker_port,
                                             bind="127.0.0.1",
                                             run_as=getpass.getuser())  # fmt: skip
        self.broker = BrokerProcess(self.folder / "broker" / "mosquitto.conf",
                                    self.broker_port).start()  # fmt: skip
        self._start("hq", ["hq", "run", "--config", str(self._write_hq_config())],
                    {"DUNEWATCH_HQ_MQTT_PASSWORD": self.passwords["hq"]}, "HQ running")  # fmt: skip
        # A post's batches reach HQ only once HQ's session holds its subscription: before
        # that the broker has nobody to keep them for, and a node would lose its first ones.
        self.services["hq"].wait_for_line("HQ ingest subscribed")
        mavlink, cameras, recorded = {}, [], {}
        for post in self.scenario.posts:
            port = free_udp_port()
            recorded_port = None
            if self.options.recorded_flight is not None and post is self.scenario.posts[-1]:
                recorded_port = free_udp_port()
                recorded[str(self.options.recorded_flight)] = f"udpout:127.0.0.1:{recorded_port}"
            drones = [d for d in self.scenario.drones if d.post == post.name]
            post_cameras = [self._camera(d.sysid) for d in drones]
            if self.options.mast_camera and post is self.scenario.posts[0]:
                post_cameras.append(self._mast_camera(post))
            config = self._write_node_config(post, port, post_cameras, recorded_port)
            self._start(f"node-{post.name}", ["edge", "run", "--config", str(config)],
                        {"NODE_MQTT_PASSWORD": self.passwords[username(site, post.name)]},
                        "node running")  # fmt: skip
            if not self.options.klv_cameras:
                mavlink.update({d.sysid: f"udpout:127.0.0.1:{port}" for d in drones})
            cameras += post_cameras
        for name, service in self.services.items():
            service.wait_for_line(self._ready_lines[name])
        self.live = LiveScenario(self.scenario_path, self.folder / "sim",
                                 skip_s=self.options.skip_s, mavlink=mavlink,
                                 cameras=cameras, recorded=recorded,
                                 faults=self.options.mavlink_faults).start()  # fmt: skip

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
        for service in reversed(list(self.services.values())):
            service.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def truth_path(self) -> Path:
        return self.folder / "sim" / "truth.jsonl"

    def failed(self) -> list[str]:
        """Parts that exited while they should run."""
        dead = [f"{s.name}:\n{s.tail()}" for s in self.services.values() if not s.running()]
        return dead + (self.live.failed() if self.live is not None else [])

    # --- configuration, as a directorate would write it ------------------------------------

    def _camera(self, sysid: int) -> LiveCamera:
        width, height = self.options.camera_size
        klv = self.options.klv_cameras
        return LiveCamera(sysid=sysid, port=free_udp_port() if klv else free_tcp_port(),
                          mode=self.options.camera_mode, width=width, height=height,
                          fps=self.options.camera_fps, lighting=self.options.lighting,
                          klv=klv)  # fmt: skip

    def _mast_camera(self, post) -> LiveCamera:
        """A camera on a mast at the post, panned to the nearest point of the border and
        tilted to meet the ground there (at most 500 m out)."""
        frame = EnuFrame(post.lat, post.lon, post.alt)
        border = np.array([frame.from_geodetic(lat, lon, post.alt)[:2]
                           for lat, lon in self.scenario.border])  # fmt: skip
        segments = zip(border[:-1], border[1:], strict=True)
        nearest = min((_nearest_on_segment(a, b) for a, b in segments), key=np.linalg.norm)
        distance = min(float(np.linalg.norm(nearest)), 500.0)
        pan = math.degrees(math.atan2(nearest[0], nearest[1])) % 360.0
        tilt = -math.degrees(math.atan2(self.options.mast_height_m, distance))
        width, height = self.options.camera_size
        return LiveCamera(sysid=None, port=free_tcp_port(), mode=self.options.camera_mode,
                          width=width, height=height, fps=self.options.camera_fps,
                          hfov_deg=self.options.mast_hfov_deg, lighting=self.options.lighting,
                          mast=(post.lat, post.lon, self.options.mast_height_m, pan, tilt))

    def _write_hq_config(self) -> Path:
        scenario, options = self.scenario, self.options
        origin = scenario.posts[0]
        places = [PlaceSection(name=f"{p.name} post", lat=p.lat, lon=p.lon,
                               radius_m=options.place_radius_m) for p in scenario.posts]
        broker = BrokerSection(host="127.0.0.1", port=self.broker_port, username="hq",
                               password=SecretRef(env="DUNEWATCH_HQ_MQTT_PASSWORD"))
        api = None if options.api_port is None else {"host": "127.0.0.1", "port": options.api_port}
        alerts = AlertSection(distress_dwell_s=options.distress_dwell_s)
        config = HqConfig(origin=(origin.lat, origin.lon, origin.alt), border=scenario.border,
                          home=(origin.lat, origin.lon), store=str(self.database), places=places,
                          broker=broker, alerts=alerts, api=api)  # fmt: skip
        return write_config(self.folder / "hq" / "hq.toml", config,
                            f"HQ for scenario {scenario.name}, written by stack.deployment")

    def _write_node_config(self, post, mavlink_port: int, cameras: list[LiveCamera],
                           recorded_port: int | None) -> Path:  # fmt: skip
        folder = self.folder / f"node-{post.name}"
        folder.mkdir(parents=True, exist_ok=True)
        links = [] if self.options.klv_cameras else [f"udpin:127.0.0.1:{mavlink_port}"]
        if recorded_port is not None:
            links.append(f"udpin:127.0.0.1:{recorded_port}")
        return write_config(folder / "node.toml",
                            node_config(self.scenario.name, post, self.node_broker_port,
                                        folder / "outbox.db", links, cameras,
                                        thermal_calibrated=self.options.thermal_calibrated),
                            f"Edge node of post {post.name}, written by stack.deployment")

    def restart(self, name: str, kill: bool = True, down_s: float = 0.0) -> None:
        """Stop a service (kill -9 by default: a crash or a power cut) and start it again
        with the same command, waiting until it is ready."""
        service = self.services[name]
        if kill:
            service.kill()
        else:
            service.stop()
        time.sleep(down_s)
        service.start().wait_for_line(self._ready_lines[name])

    def _start(self, name: str, args: list[str], env: dict[str, str], ready_line: str) -> None:
        self._ready_lines[name] = ready_line
        self.services[name] = Service(name, args, env, self.folder / f"{name}.log").start()


def node_config(site: str, post, broker_port: int, outbox: Path, mavlink_urls: list[str],
                cameras: list[LiveCamera], status_period_s: float = 5.0,
                password_env: str = "NODE_MQTT_PASSWORD",
                thermal_detector: str = "hot_spots",
                thermal_calibrated: bool = True) -> EdgeConfig:  # fmt: skip
    """An edge node's config for `post` (lat, lon, alt) at `site`, reaching the broker on
    loopback with its own account and reading the simulator's links and cameras; its
    thermal cameras run `thermal_detector` (edge.config.CameraSection), told their kelvin
    per level when `thermal_calibrated`."""
    uplink = UplinkSection(port=broker_port, username=username(site, post.name),
                           password=SecretRef(env=password_env), outbox=outbox,
                           status_period_s=status_period_s)  # fmt: skip
    return EdgeConfig(site=site, node=post.name,
                        post=PostConfig(lat=post.lat, lon=post.lon, alt=post.alt),
                        uplink=uplink, mavlink=[MavlinkLink(url=url) for url in mavlink_urls],
                        cameras=[_camera_section(c, thermal_detector, thermal_calibrated)
                                 for c in cameras])  # fmt: skip


def _camera_section(camera: LiveCamera, thermal_detector: str = "hot_spots",
                    calibrated: bool = True) -> CameraSection:  # fmt: skip
    view = dict(name=camera.name, source=camera.url, mode=camera.mode, hfov_deg=camera.hfov_deg,
                width=camera.width, height=camera.height, latency_s=0.0,
                thermal_detector=thermal_detector,
                kelvin_per_level=camera.kelvin_per_level if calibrated else None)  # fmt: skip
    if camera.klv:  # the pose and field of view of every frame: the stream's KLV metadata
        return CameraSection(**view, kind="klv")
    if camera.mast is None:
        return CameraSection(**view, drone_sysid=camera.sysid)
    lat, lon, height, pan, tilt = camera.mast
    return CameraSection(**view, mast=(lat, lon, height), mast_pan_deg=pan, mast_tilt_deg=tilt)


def _nearest_on_segment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point of segment ab nearest the origin (the post)."""
    along = b - a
    fraction = np.clip(-a @ along / max(along @ along, 1e-12), 0.0, 1.0)
    return a + fraction * along
