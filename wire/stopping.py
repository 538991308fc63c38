"""SIGTERM handled as Ctrl-C: how `timeout`, a service manager or a CI runner stops a
command is how an operator does, so that every long-running command (the stack's demo,
the simulator's) stops all it started on either. Shared by stack and sim_hw, which
import nothing of each other's."""

from __future__ import annotations

import signal


def stop_on_sigterm_as_on_ctrl_c() -> None:
    """From now on the first SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C
    does; later ones are ignored, so that the clean-up it starts (stopping child processes,
    which may take seconds) is not cut short. A service manager that will not wait sends
    SIGKILL after its own timeout."""
    signal.signal(signal.SIGTERM, _interrupt_once)


def _interrupt_once(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt
