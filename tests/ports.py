"""Loopback ports for the servers tests start as separate processes (bank simulator, web app, gunicorn).

Probing for a free port and closing the probe leaves a gap before the server binds, in which another test
process (an xdist worker, a concurrent run) may be handed the same port: by its own probe, or as the source
port of any outgoing connection (a PostgreSQL connection, an HTTP request). A reservation closes that gap: the
port stays bound (SO_REUSEADDR, never listening) by the test for as long as the server runs. The kernel then
gives that port to no other bind(0) and to no outgoing connection, while the server - werkzeug and gunicorn both
set SO_REUSEADDR - may still bind and listen on it. Close the reservation once the server has stopped."""

from __future__ import annotations

import socket


def reserve_port() -> socket.socket:
    """A loopback port held for a server process: `reservation.getsockname()[1]` is the port."""
    reservation = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.bind(("127.0.0.1", 0))
    return reservation


def port_of(reservation: socket.socket) -> int:
    return int(reservation.getsockname()[1])
