"""`make bench`: bench/crypto.py (SM2/SM3, OpenSSL vs gmssl) then bench/agreement.py (render + sign, memory)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in ("crypto.py", "agreement.py"):
        print(f"== bench/{script}")
        sys.argv = [str(HERE / script)]
        runpy.run_path(str(HERE / script), run_name="__main__")
