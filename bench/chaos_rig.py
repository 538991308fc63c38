"""A private delivery path to break: mosquitto with the project's ACL, `python -m hq run` on
a SQLite store, and posts streaming TrackBatches through the node's own uplink
(bench/stream_post.py), each a process that can be killed with -9 and started
again. Used by the chaos benchmark (bench/chaos.py) and the delivery tests.

`tally()` says, per post, how many batches it made (from its outbox file's
numbers) and how many HQ's store holds, and whether any is missing or counted twice.
"""

from __future__ import annotations

import getpass
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bench.stream_post import produced
from edge.config import EdgeConfig, PostConfig, UplinkSection
from hq.broker import BrokerProcess, free_tcp_port, username, write_broker_config
from stack.config_files import write_config
from stack.process import Service
from wire.secrets import SecretRef

SITE = "chaos"
ORIGIN = (22.84, 14.13, 620.0)


@dataclass(frozen=True)
class PostTally:
    node_key: str
    produced: int  # batches the post numbered
    stored: int  # distinct seqs in HQ's store
    missing: int  # numbered, not stored
    counted_twice: int  # the store's batch counter beyond its distinct seqs


class DeliveryRig:
    def __init__(self, folder: Path, posts: int = 3, rate_hz: float = 20.0,
                 confirm_timeout_s: float = 5.0):  # fmt: skip
        self.folder = Path(folder)
        self.rate_hz = rate_hz
        self.names = [f"post-{k + 1}" for k in range(posts)]
        self.port = free_tcp_port()
        self.passwords = write_broker_config(self.folder / "broker",
                                             [(SITE, n) for n in self.names], port=self.port,
                                             bind="127.0.0.1",
                                             run_as=getpass.getuser())  # fmt: skip
        self.broker = BrokerProcess(self.folder / "broker" / "mosquitto.conf", self.port)
        self.database = self.folder / "hq.db"
        self.hq = Service("hq", ["hq", "run", "--config", str(self._write_hq_config())],
                          {"HQ_MQTT_PASSWORD": self.passwords["hq"]},
                          log_path=self.folder / "hq.log")  # fmt: skip
        self.posts = {name: self._post_service(name, confirm_timeout_s) for name in self.names}

    # --- the parts -------------------------------------------------------------------------

    def start(self) -> DeliveryRig:
        self.broker.start()
        self.start_hq()
        for name in self.names:
            self.start_post(name)
        return self

    def start_hq(self) -> None:
        self.hq.start().wait_for_line("ingest subscribed")

    def start_post(self, name: str) -> None:
        self.posts[name].start().wait_for_line("post streaming")

    def drain_posts(self, timeout_s: float = 180.0) -> dict[str, int]:
        """Stop the posts (SIGTERM) and run each again making nothing, until HQ confirmed all
        its outbox held; the messages each left behind (0 when all were confirmed)."""
        for service in self.posts.values():
            service.stop(timeout=15)
        drains = {name: Service(f"{name}-drain", [*service.args, "--drain", "--drain-timeout",
                                                  str(timeout_s)], service.env,
                                log_path=service.log_path).start()
                  for name, service in self.posts.items()}  # fmt: skip
        left = {}
        for name, drain in drains.items():
            drain.process.wait(timeout=timeout_s + 30)
            drain.wait_for_line("post drained", timeout=10)
            line = next(x for x in drain.lines if "post drained" in x)
            left[name] = int(line.split("left=")[1].split()[0])
        return left

    def kill_broker(self, keep_persistence: bool) -> None:
        """kill -9 of mosquitto; without its persistence file it comes back empty."""
        self.broker.kill()
        if not keep_persistence:
            for file in (self.folder / "broker" / "data").glob("mosquitto.db*"):
                file.unlink()

    def stop(self) -> None:
        """Every process this rig started, ended: posts (flushing), HQ, the broker."""
        for service in self.posts.values():
            service.stop(timeout=15)
        self.hq.stop(timeout=15)
        self.broker.kill()

    def kill_all(self) -> None:
        for service in [*self.posts.values(), self.hq]:
            service.kill()
        self.broker.kill()

    # --- what arrived ----------------------------------------------------------------------

    def outbox(self, name: str) -> Path:
        return self.folder / f"{name}.outbox.db"

    def tally(self) -> list[PostTally]:
        tallies = []
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            for name in self.names:
                key = f"{SITE}/{name}"
                first, last = produced(self.outbox(name))
                seqs = {row[0] for row in db.execute(
                    "SELECT seq FROM seen_batches WHERE node_key = ?", [key])}  # fmt: skip
                row = db.execute("SELECT batches FROM ingest_positions WHERE node_key = ?",
                                 [key]).fetchone()  # fmt: skip
                counted = 0 if row is None else row[0]
                made = set(range(first, last + 1))
                tallies.append(PostTally(key, len(made), len(seqs & made), len(made - seqs),
                                         counted - len(seqs)))  # fmt: skip
        return tallies

    def all_stored(self) -> bool:
        return all(t.missing == 0 for t in self.tally())

    # --- files -----------------------------------------------------------------------------

    def _write_hq_config(self) -> Path:
        path = self.folder / "hq.toml"
        path.write_text(f"""# the chaos rig's HQ
origin = [{ORIGIN[0]}, {ORIGIN[1]}, {ORIGIN[2]}]
border = [[23.52, 11.99], [22.79, 14.22], [23.00, 15.00]]
home = [{ORIGIN[0]}, {ORIGIN[1]}]
database = "{self.database}"
[broker]
port = {self.port}
password = {{ env = "HQ_MQTT_PASSWORD" }}
""")
        return path

    def _post_service(self, name: str, confirm_timeout_s: float) -> Service:
        k = self.names.index(name)
        uplink = UplinkSection(port=self.port, username=username(SITE, name),
                               password=SecretRef(env="NODE_MQTT_PASSWORD"),
                               outbox=self.outbox(name), confirm_timeout_s=confirm_timeout_s,
                               drain_rate=200.0, status_period_s=5.0)  # fmt: skip
        config = EdgeConfig(site=SITE, node=name, uplink=uplink,
                            post=PostConfig(lat=ORIGIN[0], lon=ORIGIN[1] + 0.02 * k,
                                            alt=ORIGIN[2]))  # fmt: skip
        path = write_config(self.folder / f"{name}.toml", config, "a chaos rig post")
        return Service(name, ["bench.stream_post", "--config", str(path),
                              "--rate", str(self.rate_hz)],
                       {"NODE_MQTT_PASSWORD": self.passwords[username(SITE, name)]},
                       log_path=self.folder / f"{name}.log")  # fmt: skip
