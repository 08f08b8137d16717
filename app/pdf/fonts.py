"""Font subsetting check: WeasyPrint embeds subset CJK fonts quickly only with HarfBuzz's subset library.

WeasyPrint subsets with HarfBuzz when `libharfbuzz-subset` loads and HarfBuzz is at least 4.1.0; otherwise it
silently falls back to fontTools, which takes many seconds and a lot of memory on the Noto CJK collections.
"""

from __future__ import annotations

import ctypes
from functools import cache

from app.platform.errors import ConfigError

HARFBUZZ_NAMES = ("libharfbuzz.so.0", "libharfbuzz.0.dylib", "libharfbuzz-0.dll")
HARFBUZZ_SUBSET_NAMES = ("libharfbuzz-subset.so.0", "libharfbuzz-subset.0.dylib", "libharfbuzz-subset-0.dll")
MIN_HARFBUZZ_VERSION = (4, 1, 0)
DEBIAN_PACKAGE = "libharfbuzz-subset0"


def _load_library(names: tuple[str, ...]) -> ctypes.CDLL | None:
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@cache
def harfbuzz_subset_problem() -> str | None:
    """Why WeasyPrint would not subset fonts with HarfBuzz here (English), or None when it will."""
    subset = _load_library(HARFBUZZ_SUBSET_NAMES)
    if subset is None or not hasattr(subset, "hb_subset_or_fail"):
        return "the HarfBuzz subset library (libharfbuzz-subset.so.0) cannot be loaded"
    harfbuzz = _load_library(HARFBUZZ_NAMES)
    if harfbuzz is None:
        return "the HarfBuzz library (libharfbuzz.so.0) cannot be loaded"
    harfbuzz.hb_version_atleast.restype = ctypes.c_int
    harfbuzz.hb_version_atleast.argtypes = (ctypes.c_uint, ctypes.c_uint, ctypes.c_uint)
    if not harfbuzz.hb_version_atleast(*MIN_HARFBUZZ_VERSION):
        harfbuzz.hb_version_string.restype = ctypes.c_char_p
        version = harfbuzz.hb_version_string().decode()
        wanted = ".".join(map(str, MIN_HARFBUZZ_VERSION))
        return f"HarfBuzz {version} is too old for subsetting (need {wanted} or newer)"
    return None


def ensure_harfbuzz_subset() -> None:
    """Raise ConfigError when PDF fonts could not be subset with HarfBuzz (the result is cached per process)."""
    problem = harfbuzz_subset_problem()
    if problem is None:
        return
    raise ConfigError(
        f"缺少 HarfBuzz 字体子集库，无法高效生成协议 PDF。请安装 Debian 软件包 {DEBIAN_PACKAGE}"
        f"（apt-get install {DEBIAN_PACKAGE}）。"
        f" / HarfBuzz font subsetting is unavailable: {problem}. Install the Debian package {DEBIAN_PACKAGE}.",
        code="HARFBUZZ_SUBSET_MISSING",
        details={"package": DEBIAN_PACKAGE, "reason": problem},
    )
