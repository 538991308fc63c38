"""The HQ broker's access control: one account per node, each confined to its topics.

`python -m hq broker-config --node SITE/NODE ... --out DIR` writes, for
mosquitto, `DIR/acl` (a node publishes only under `dunewatch/v1/SITE/NODE/#`
and reads only HQ's confirmations of its own batches; HQ's account reads all
and writes only the confirmations), `DIR/passwd` (hashed by
`mosquitto_passwd`), `DIR/mosquitto.conf` (from configs/mosquitto/: each
client's id is its account name, so that no account can take another's
session; publishes over `MESSAGE_SIZE_LIMIT` are refused), and
`DIR/credentials.toml` (mode 600) holding the generated passwords for
provisioning each edge box. DIR must be outside the repository.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import tomli_w

from wire import topics

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "mosquitto"
HQ_USER = "hq"
MESSAGE_SIZE_LIMIT = 1024 * 1024  # bytes of payload the broker accepts in one publish


def username(site: str, node: str) -> str:
    return f"{site}.{node}"


def acl_text(nodes: list[tuple[str, str]]) -> str:
    blocks = "\n".join(
        f"user {username(site, node)}\ntopic write {topics.node_root(site, node)}\n"
        f"topic read {topics.delivered(site, node)}\n"
        for site, node in nodes
    )
    template = (CONFIG_DIR / "acl.template").read_text()
    return template.format(hq_user=HQ_USER, node_blocks=blocks,
                           hq_acks=topics.all_delivered())  # fmt: skip


def write_broker_config(out: Path, nodes: list[tuple[str, str]], port: int = 1883,
                        bind: str = "0.0.0.0", passwords: dict[str, str] | None = None,
                        run_as: str = "mosquitto") -> dict[str, str]:  # fmt: skip
    """Write the broker's files into `out`; the passwords by user name."""
    if shutil.which("mosquitto_passwd") is None:
        raise RuntimeError("mosquitto_passwd not found: install the mosquitto package")
    out.mkdir(parents=True, exist_ok=True)
    users = [HQ_USER] + [username(site, node) for site, node in nodes]
    passwords = dict(passwords or {})
    for user in users:
        passwords.setdefault(user, secrets.token_urlsafe(24))
    password_file = out / "passwd"
    password_file.unlink(missing_ok=True)
    for user in users:
        flags = ["-b"] if password_file.exists() else ["-c", "-b"]
        subprocess.run(["mosquitto_passwd", *flags, str(password_file), user, passwords[user]],
                       check=True, capture_output=True)  # fmt: skip
    (out / "acl").write_text(acl_text(nodes))
    (out / "data").mkdir(exist_ok=True)
    conf = (CONFIG_DIR / "mosquitto.conf").read_text().format(
        password_file=password_file, acl_file=out / "acl", persistence="true",
        persistence_location=f"{out / 'data'}/", port=port, bind=bind, run_as=run_as,
        message_size_limit=MESSAGE_SIZE_LIMIT,
    )  # fmt: skip
    (out / "mosquitto.conf").write_text(conf)
    credentials = out / "credentials.toml"
    credentials.write_text(tomli_w.dumps({user: passwords[user] for user in users}))
    os.chmod(credentials, 0o600)
    return passwords


class BrokerProcess:
    """A mosquitto started with a written config, for the demo, tests and benchmarks;
    `stop` (or `kill`) and `start` again restart it on the same port."""

    def __init__(self, config_file: Path, port: int):
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto not found: install the mosquitto package")
        self.config_file = config_file
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> BrokerProcess:
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
        """SIGTERM: mosquitto saves its persistent store and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash or a power cut of the broker."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hq broker-config", description=__doc__)
    parser.add_argument("--node", action="append", required=True, metavar="SITE/NODE")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args(argv)
    nodes = []
    for entry in args.node:
        site, _, node = entry.partition("/")
        topics.node_root(site, node)  # refuses names that cannot be topic levels
        nodes.append((site, node))
    write_broker_config(args.out, nodes, args.port)
    print(f"broker files in {args.out}; passwords in {args.out / 'credentials.toml'}")
    return 0
