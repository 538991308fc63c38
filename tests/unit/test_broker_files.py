"""The broker's files as HQ writes them: the credentials file is TOML that reads back to
exactly the passwords the broker was given, whatever characters they hold."""

import stat
import tomllib

from hq.broker import HQ_USER, username, write_broker_config


def test_credentials_read_back_exactly_even_with_quotes_and_backslashes(tmp_path):
    awkward = 'pa"ss\\word\n="x'
    passwords = write_broker_config(tmp_path, [("tummo", "east-1")], port=18830,
                                    passwords={HQ_USER: awkward})  # fmt: skip
    credentials = tmp_path / "credentials.toml"
    read_back = tomllib.loads(credentials.read_text())
    assert read_back == passwords
    assert read_back[HQ_USER] == awkward
    assert set(read_back) == {HQ_USER, username("tummo", "east-1")}
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
