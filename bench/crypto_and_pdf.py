"""Benchmark: SM2/SM3/SM4 per provider, and one agreement rendered to PDF and signed.

Run: .venv/bin/python bench/crypto_and_pdf.py [--json out.json]
Prints a table; never part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.crypto import get_provider
from app.crypto.keys import ensure_keys, generate_sm2_private_key_pem, public_key_pem_from_private


def rate(operation: Callable[[], object], seconds: float = 1.0) -> float:
    """Operations per second, measured over at least `seconds`."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        operation()
        count += 1
    return count / elapsed


def crypto_rows() -> list[dict[str, object]]:
    private = generate_sm2_private_key_pem()
    public = public_key_pem_from_private(private)
    message = b"x" * 256
    key = bytes(16)
    rows = []
    for name in ("openssl", "gmssl"):
        provider = get_provider(name)
        signature = provider.sm2_sign(private, message)
        token = provider.sm4_encrypt(key, b"110105194912310021")
        rows += [
            {
                "provider": name,
                "operation": "sm2_sign 256 B",
                "ops_per_s": rate(lambda p=provider: p.sm2_sign(private, message)),
            },
            {
                "provider": name,
                "operation": "sm2_verify 256 B",
                "ops_per_s": rate(lambda p=provider, s=signature: p.sm2_verify(public, message, s)),
            },
            {"provider": name, "operation": "sm3 4 KiB", "ops_per_s": rate(lambda p=provider: p.sm3(b"y" * 4096))},
            {
                "provider": name,
                "operation": "sm4 token decrypt (ID number)",
                "ops_per_s": rate(lambda p=provider, t=token: p.sm4_decrypt(key, t)),
            },
        ]
    return rows


def pdf_rows() -> list[dict[str, object]]:
    from app.domain.agreement import AgreementData, Party, agreement_context
    from app.pdf.render import html_to_pdf, render_agreement_html
    from app.pdf.sign import sign_pdf
    from app.pdf.verify import verify_pdf

    keys = Path(tempfile.mkdtemp())
    ensure_keys(keys, [])
    data = AgreementData(
        "RE1100002026112300001",
        "北京",
        "二手房交易资金存管",
        "中国光大银行",
        Party("张三", "11010519491231002X", "中国光大银行", "6226620012345678"),
        Party("李四", "110101198001010053", "中国工商银行", "6222020200112233445"),
        "北京市朝阳区建国路1号",
        "京(2024)朝阳区不动产权第0001234号",
        350_000_000,
        123_456_789,
        datetime.now(UTC),
        None,
    )
    html = render_agreement_html("resale_escrow", "v1", agreement_context(data))
    html_to_pdf(html)  # warm up: font loading
    timings: dict[str, list[float]] = {"render PDF": [], "sign PDF": [], "verify PDF": []}
    for _ in range(5):
        start = time.perf_counter()
        pdf = html_to_pdf(html)
        timings["render PDF"].append(time.perf_counter() - start)
        start = time.perf_counter()
        signed = sign_pdf(
            pdf,
            (keys / "platform.key.pem").read_bytes(),
            (keys / "platform.cert.pem").read_bytes(),
            signer_name="存管平台",
            reason="bench",
            location="北京",
            signing_time=datetime.now(UTC),
        )
        timings["sign PDF"].append(time.perf_counter() - start)
        start = time.perf_counter()
        assert verify_pdf(signed).signature_valid
        timings["verify PDF"].append(time.perf_counter() - start)
    return [
        {"provider": "openssl", "operation": f"{name} ({len(signed) // 1024} KiB)", "median_ms": sorted(v)[2] * 1000}
        for name, v in timings.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = crypto_rows() + pdf_rows()
    for row in rows:
        figure = (
            f"{row['ops_per_s']:>10.0f} ops/s" if "ops_per_s" in row else f"{row['median_ms']:>10.1f} ms (median of 5)"
        )
        print(f"{row['provider']:<8} {row['operation']:<34} {figure}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
