"""A party's signature image as a PDF appearance stream: the name in a red seal-like box.

The characters are the same Noto CJK glyph outlines the platform's seal uses (`app.pdf.seal`), drawn as paths,
so the appearance adds no text (and no font) to the file.
"""

from __future__ import annotations

from fontTools.pens.basePen import BasePen

from app.pdf.seal import draw_glyph

_RED = b"0.831 0 0.059"  # #d4000f, the seal colour


class _PdfPathPen(BasePen):
    """fontTools pen writing PDF path operators (quadratic curves become cubic ones in BasePen)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.ops: list[bytes] = []

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self.ops.append(b"%.1f %.1f m" % pt)

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self.ops.append(b"%.1f %.1f l" % pt)

    def _curveToOne(self, p1: tuple[float, float], p2: tuple[float, float], p3: tuple[float, float]) -> None:
        self.ops.append(b"%.1f %.1f %.1f %.1f %.1f %.1f c" % (*p1, *p2, *p3))

    def _closePath(self) -> None:
        self.ops.append(b"h")


def signature_appearance(name: str, width: float, height: float) -> bytes:
    """The content of a form XObject [0 0 width height]: a red double box with `name` centred in it."""
    ops = [b"q", _RED + b" RG", _RED + b" rg", b"2 w 2 2 %.2f %.2f re S" % (width - 4, height - 4)]
    ops.append(b"0.8 w 5 5 %.2f %.2f re S" % (width - 10, height - 10))
    characters = [character for character in name if not character.isspace()] or ["?"]
    size = min(height * 0.55, (width - 16) / len(characters))
    left = (width - size * len(characters)) / 2
    baseline = (height - size) / 2 + size * 0.12
    for index, character in enumerate(characters):
        pen = _PdfPathPen()
        units = draw_glyph(character, pen)
        if not pen.ops:
            continue
        scale = size / units
        ops.append(b"q %.5f 0 0 %.5f %.2f %.2f cm" % (scale, scale, left + index * size, baseline))
        ops.extend(pen.ops)
        ops.append(b"f Q")
    ops.append(b"Q")
    return b"\n".join(ops)
