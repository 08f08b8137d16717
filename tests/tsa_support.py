"""The timestamp authority as its own process (`python -m app.tsa serve`, what `flask tsa serve` runs) on a reserved
loopback port, with its own folder (key, certificate, serial numbers). Tests use one per module."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from app.tsa.identity import CERTIFICATE_FILE
from tests.ports import port_of, reserve_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_START_TIMEOUT_S = 20


@dataclass
class TsaProcess:
    url: str
    folder: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    port_reservation: socket.socket

    @property
    def certificate_pem(self) -> bytes:
        return (self.folder / CERTIFICATE_FILE).read_bytes()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.port_reservation.close()


def start_tsa(folder: Path) -> TsaProcess:
    reservation = reserve_port()
    port = port_of(reservation)
    log_path = folder.with_name(f"{folder.name}.{port}.log")
    command = [sys.executable, "-m", "app.tsa", "serve", "--port", str(port), "--keys-dir", str(folder)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    tsa = TsaProcess(f"http://127.0.0.1:{port}/", folder, process, log_path, reservation)
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            tsa.stop()
            raise AssertionError(f"the TSA exited: {log_path.read_text(errors='replace')}")
        try:
            if requests.get(f"{tsa.url}healthz", timeout=1).status_code == 200:
                return tsa
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            tsa.stop()
            raise AssertionError(f"the TSA did not answer: {log_path.read_text(errors='replace')}")
        time.sleep(0.05)


@contextmanager
def running_tsa(folder: Path) -> Iterator[TsaProcess]:
    tsa = start_tsa(folder)
    try:
        yield tsa
    finally:
        tsa.stop()
