"""The platform's seal image (电子签章外观), drawn here as SVG from the platform's name.

The characters are drawn as outlines taken from the system's Noto Sans CJK font (fontTools), not as SVG
text: the seal then adds no text to the PDF, so the agreement's text in the PDF is exactly its HTML text.
The SVG is deterministic for a given name and font, and computed once per process.
"""

from __future__ import annotations

import math
import subprocess
import threading
from functools import cache
from pathlib import Path

from markupsafe import Markup

from app.platform.errors import ConfigError

SEAL_COLOUR = "#d4000f"
SEAL_SIZE = 200  # SVG user units; the template sets the printed size
_FONT_PATTERN = "Noto Sans CJK SC:bold"
_FALLBACK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")


def _font_file() -> Path:
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", _FONT_PATTERN], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    path = Path(found) if found else _FALLBACK_FONT
    if not path.is_file():
        raise ConfigError(
            "缺少 Noto CJK 字体，无法生成电子签章图案。请安装 Debian 软件包 fonts-noto-cjk。",
            code="SEAL_FONT_MISSING",
        )
    return path


@cache
def _glyph_outlines() -> tuple[object, dict[int, str], int]:
    """(glyph set, cmap, units per em) of the Simplified Chinese face."""
    from fontTools.ttLib import TTCollection, TTFont

    path = _font_file()
    if path.suffix.lower() in (".ttc", ".otc"):
        fonts = TTCollection(str(path), lazy=True).fonts
        font = next((f for f in fonts if " SC" in f["name"].getDebugName(1)), fonts[0])
    else:
        font = TTFont(str(path), lazy=True)
    return font.getGlyphSet(), font.getBestCmap(), int(font["head"].unitsPerEm)


def _glyph_path(character: str) -> str:
    from fontTools.pens.svgPathPen import SVGPathPen

    glyphs, cmap, _ = _glyph_outlines()
    name = cmap.get(ord(character))
    if name is None:
        return ""
    pen = SVGPathPen(glyphs)
    glyphs[name].draw(pen)  # type: ignore[index]
    return pen.getCommands()


def _character(character: str, x: float, y: float, size: float, rotate: float, squeeze: float = 1.0) -> str:
    """One character centred on (x, y), `size` units tall, turned by `rotate` degrees (font units are y-up)."""
    _, _, units = _glyph_outlines()
    scale = size / units
    path = _glyph_path(character)
    if not path:
        return ""
    transform = (
        f"translate({x:.2f} {y:.2f}) rotate({rotate:.2f}) scale({scale * squeeze:.5f} {-scale:.5f}) "
        f"translate({-units / 2:.1f} {-units * 0.38:.1f})"
    )
    return f'<path transform="{transform}" d="{path}"/>'


def _star(cx: float, cy: float, outer: float) -> str:
    inner = outer * 0.382
    points = []
    for index in range(10):
        radius = outer if index % 2 == 0 else inner
        angle = math.radians(-90 + index * 36)
        points.append(f"{cx + radius * math.cos(angle):.2f},{cy + radius * math.sin(angle):.2f}")
    return f'<polygon points="{" ".join(points)}"/>'


@cache
def seal_svg(name: str, caption: str = "电子签章") -> str:
    """A round red seal: `name` along the upper arc, a star, `caption` below it."""
    centre = SEAL_SIZE / 2
    ring = centre - 6
    arc_radius = ring - 30
    size = 30.0 if len(name) <= 10 else 24.0
    spread = min(250.0, 40.0 * len(name))  # degrees of arc the name takes
    parts = []
    for index, character in enumerate(name):
        step = spread / max(len(name) - 1, 1)
        angle = -90 - spread / 2 + index * step if len(name) > 1 else -90
        x = centre + arc_radius * math.cos(math.radians(angle))
        y = centre + arc_radius * math.sin(math.radians(angle))
        parts.append(_character(character, x, y, size, angle + 90, squeeze=0.85))
    caption_size = 20.0
    caption_width = caption_size * 0.95
    for index, character in enumerate(caption):
        x = centre + (index - (len(caption) - 1) / 2) * caption_width
        parts.append(_character(character, x, centre + 52, caption_size, 0))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SEAL_SIZE} {SEAL_SIZE}" '
        f'width="{SEAL_SIZE}" height="{SEAL_SIZE}" role="img" aria-label="">'
        f'<g fill="none" stroke="{SEAL_COLOUR}"><circle cx="{centre}" cy="{centre}" r="{ring}" stroke-width="7"/></g>'
        f'<g fill="{SEAL_COLOUR}">{_star(centre, centre, 30)}{"".join(parts)}</g>'
        "</svg>"
    )


_DRAWING = threading.Lock()  # fontTools loads glyphs lazily and is not thread-safe


def seal_markup(name: str, caption: str = "电子签章") -> Markup:
    """The seal as inline SVG for an agreement template (trusted: made here from glyph outlines)."""
    with _DRAWING:
        return Markup(seal_svg(name, caption))


def draw_glyph(character: str, pen: object) -> int:
    """Draw `character`'s outline (font units, y up) with a fontTools pen; the font's units per em."""
    with _DRAWING:
        glyphs, cmap, units = _glyph_outlines()
        name = cmap.get(ord(character))
        if name is not None:
            glyphs[name].draw(pen)  # type: ignore[index]
        return units
