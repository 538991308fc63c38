"""A TCP relay on loopback whose link can be cut, as a satellite or radio uplink is.

While cut, the relay forwards nothing in either direction and answers nothing:
bytes are swallowed, no FIN and no RST, so each side learns of the outage only
from its own keep-alive, as on a real link that goes quiet. New connections
are accepted and swallowed too. `restore` drops the connections that were
open across the cut (they are dead by then on both ends) and relays again.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class TcpRelay:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self.connections = 0

    def start(self) -> TcpRelay:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut(self) -> None:
        self._cut.set()

    def restore(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                if sock is not None:
                    _reset(sock)
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.restore()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self._cut.is_set():  # the far end is unreachable: hold the line, say nothing
                with self._lock:
                    self._pairs.append((client, None))
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if sink is None or self._cut.is_set():
                continue  # swallowed by the outage
            try:
                sink.sendall(data)
            except OSError:
                break
        if not self._cut.is_set():
            for sock in (source, sink):
                if sock is not None:
                    _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close at once with a reset, dropping whatever is unsent."""
    with contextlib.suppress(OSError):  # already closed: nothing to reset
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
