"""Serial numbers of the TSA's tokens: unique and persisted across restarts and between processes sharing the
folder. `serial` holds the last number issued; an exclusive lock (flock) guards the read-increment-write, the
number is on disk (fsync) before any token carrying it leaves, and each issue is appended to `issued.jsonl`."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path

SERIAL_FILE = "serial"
ISSUED_FILE = "issued.jsonl"


class SerialCounter:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def issue(self, gen_time: datetime, imprint: bytes, nonce: int | None) -> int:
        """The next serial number (1, 2, …), recorded with what it stamps."""
        descriptor = os.open(self.folder / SERIAL_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            text = os.read(descriptor, 64).decode("ascii").strip()
            serial = int(text or 0) + 1
            os.lseek(descriptor, 0, os.SEEK_SET)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{serial}\n".encode("ascii"))
            os.fsync(descriptor)
            line = {"serial": serial, "gen_time": gen_time.isoformat(), "imprint_sm3": imprint.hex(), "nonce": nonce}
            with (self.folder / ISSUED_FILE).open("a", encoding="utf-8") as issued:
                issued.write(json.dumps(line) + "\n")
            return serial
        finally:
            os.close(descriptor)  # closing releases the lock

    def last(self) -> int:
        path = self.folder / SERIAL_FILE
        return int(path.read_text(encoding="ascii").strip() or 0) if path.is_file() else 0
