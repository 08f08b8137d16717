"""Benchmark: SM2 sign/verify per second and SM3 MB/s, fast provider (OpenSSL) vs gmssl (pure Python).

Run: .venv/bin/python bench/crypto.py   (targets: SM2 >= 20x, SM3 >= 500x)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.crypto import get_provider
from app.crypto.keys import generate_sm2_private_key_pem, public_key_pem_from_private


def rate(operation: Callable[[], object], seconds: float = 1.0) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        operation()
        count += 1
    return count / elapsed


def rows() -> list[tuple[str, float, float, str, float]]:
    """(what, fast, gmssl, unit, target ratio)."""
    private = generate_sm2_private_key_pem()
    public = public_key_pem_from_private(private)
    message = b"x" * 256
    fast, slow = get_provider("openssl"), get_provider("gmssl")
    signature = fast.sm2_sign(private, message)
    result = []
    for what, run, target in (
        ("SM2 sign 256 B", lambda p: p.sm2_sign(private, message), 20.0),
        ("SM2 verify 256 B", lambda p: p.sm2_verify(public, message, signature), 20.0),
    ):
        result.append((what, rate(lambda r=run: r(fast)), rate(lambda r=run: r(slow)), "ops/s", target))
    big, small = b"y" * (1 << 20), b"y" * (16 << 10)
    fast_mb = rate(lambda: fast.sm3(big)) * 1.0
    slow_mb = rate(lambda: slow.sm3(small), 2.0) * len(small) / (1 << 20)
    result.append(("SM3", fast_mb, slow_mb, "MB/s", 500.0))
    return result


def main() -> None:
    print(f"{'operation':<18} {'openssl':>12} {'gmssl':>10} {'unit':<6} {'ratio':>8} {'target':>8}")
    for what, fast, slow, unit, target in rows():
        ratio = fast / slow
        verdict = "ok" if ratio >= target else "MISSED"
        print(f"{what:<18} {fast:>12.1f} {slow:>10.2f} {unit:<6} {ratio:>7.0f}x {target:>6.0f}x {verdict}")


if __name__ == "__main__":
    main()
