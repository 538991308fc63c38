"""Fixtures shared by the integration tests."""

import getpass

import pytest

from hq.broker import BrokerProcess, free_tcp_port, write_broker_config

BROKER_NODES = [("tummo", "west-1"), ("tummo", "east-1")]  # the posts `broker` has accounts for


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto on a free port with HQ's config for BROKER_NODES; `.passwords` by
    account. It runs as whoever runs the test, so that it can read the test's files."""
    port = free_tcp_port()
    passwords = write_broker_config(tmp_path / "broker", BROKER_NODES, port=port,
                                    bind="127.0.0.1", run_as=getpass.getuser())  # fmt: skip
    mosquitto = BrokerProcess(tmp_path / "broker" / "mosquitto.conf", port).start()
    mosquitto.passwords = passwords
    yield mosquitto
    mosquitto.kill()
