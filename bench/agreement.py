"""Benchmark: render + sign a 4-page agreement vs bare WeasyPrint rendering of the same HTML; memory over 200.

Run: .venv/bin/python bench/agreement.py [--runs 15] [--memory-runs 200]
Targets: render+sign / bare render <= 1.25x, p50 <= 0.4 s; peak memory does not grow over the runs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pypdf import PdfReader

from app.crypto.keys import ensure_keys
from app.domain.agreement import AgreementData, Party, agreement_context
from app.pdf.render import html_to_pdf, render_agreement_html
from app.pdf.sign import sign_pdf
from app.pdf.verify import verify_pdf

DATA = AgreementData(
    "RE3301002026112300001",
    "杭州",
    "二手房交易资金存管",
    "中国工商银行",
    Party("张三", "11010519491231002X", "中国光大银行", "6226620012345678"),
    Party("李四", "110101198001010053", "中国工商银行", "6222020200112233445"),
    "杭州市西湖区文三路1号1单元101",
    "浙(2024)杭州市不动产权第0001234号",
    350_000_000,
    123_456_789,
    datetime(2026, 11, 23, tzinfo=UTC),
    None,
    clauses=("gov_supervision", "confidentiality", "dispute"),
    authority="杭州市住房保障和房产管理局",
)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--memory-runs", type=int, default=200)
    args = parser.parse_args()
    keys = Path(tempfile.mkdtemp())
    ensure_keys(keys)
    key, certificate = (keys / "platform.key.pem").read_bytes(), (keys / "platform.cert.pem").read_bytes()
    html = render_agreement_html("resale_escrow", "v1", agreement_context(DATA))

    def render_and_sign() -> bytes:
        agreement_html = render_agreement_html("resale_escrow", "v1", agreement_context(DATA))
        return sign_pdf(
            html_to_pdf(agreement_html),
            key,
            certificate,
            signer_name="存管平台",
            reason="bench",
            location="杭州",
            signing_time=datetime.now(UTC),
        )

    signed = render_and_sign()  # warm up: fonts, seal
    pages = len(PdfReader(__import__("io").BytesIO(signed)).pages)
    assert verify_pdf(signed).valid
    bare, full = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        html_to_pdf(html)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        render_and_sign()
        full.append(time.perf_counter() - start)
    bare_p50, full_p50 = statistics.median(bare), statistics.median(full)
    print(f"agreement: {pages} pages, signed PDF {len(signed) // 1024} KiB, {args.runs} runs each")
    print(f"{'bare WeasyPrint render p50':<34} {bare_p50 * 1000:>8.0f} ms")
    print(f"{'render + sign p50':<34} {full_p50 * 1000:>8.0f} ms   (target <= 400 ms)")
    print(f"{'ratio':<34} {full_p50 / bare_p50:>8.2f} x    (target <= 1.25x)")

    marks = []
    for index in range(args.memory_runs):
        render_and_sign()
        if index % 20 == 19:
            marks.append(_rss_mib())
    growth = marks[-1] - marks[0]
    print(f"RSS over {args.memory_runs} agreements (MiB, every 20): {' '.join(f'{m:.0f}' for m in marks)}")
    print(f"{'RSS growth from run 20 to the last':<34} {growth:>8.1f} MiB (target: no growth)")


if __name__ == "__main__":
    main()
