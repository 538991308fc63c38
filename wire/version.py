"""The software's version, as its package metadata (pyproject.toml) gives it: one string
for every process to report (a node's status says which build a post runs)."""

from importlib.metadata import PackageNotFoundError, version

try:
    SOFTWARE_VERSION = version("dunewatch")
except PackageNotFoundError:  # a source tree never installed (`make setup` installs it)
    SOFTWARE_VERSION = "unknown"
