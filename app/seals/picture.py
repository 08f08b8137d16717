"""The seal's picture for its SES_Seal: a PNG rendered from the same drawing as the seal on the signature page
(`app.pdf.seal.seal_svg`, Noto CJK outlines), seal red on a transparent background, 40 mm at 200 dpi: an indexed
PNG (one colour, 256 levels of alpha) of about 9 KB, which the signatures carry.

PNG rather than the SVG itself: every GB/T 38540 reader (OFD readers, ofdrw, seal-management software) shows a
PNG seal, while SVG support is not universal - GB/T 38540 names image types only by example. The drawing is laid
out by WeasyPrint (which draws the agreements) and rasterised by poppler's pdftoppm (installed for `pdfsig`)."""

from __future__ import annotations

import io
import subprocess
from functools import cache

from PIL import Image, ImageColor, ImageOps

from app.pdf.render import html_to_pdf
from app.pdf.seal import SEAL_COLOUR, seal_markup
from app.platform.errors import ConfigError
from app.seals.seal import Picture

SEAL_SIZE_MM = 40  # a round official seal (公章) is 40-42 mm across
_DPI = 200
_PAGE = (
    "<!doctype html><html><head><style>@page {{ size: {size}mm {size}mm; margin: 0 }} body {{ margin: 0 }}"
    " svg {{ display: block; width: {size}mm; height: {size}mm }}</style></head><body>{svg}</body></html>"
)


def _rasterise(pdf: bytes) -> bytes:
    try:
        return subprocess.run(
            ["pdftoppm", "-png", "-r", str(_DPI), "-singlefile", "-gray", "-"],
            input=pdf,
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise ConfigError(
            "无法生成电子印章图像：需要 poppler-utils 的 pdftoppm", code="SEAL_PICTURE_FAILED", details=str(error)
        ) from error


@cache
def seal_picture(name: str) -> Picture:
    """The PNG seal of `name` (computed once per process and name): drawn in black, the grey rendering's
    darkness (the coverage) is the index into a palette of seal red at every alpha."""
    drawing = str(seal_markup(name)).replace(SEAL_COLOUR, "#000000")
    grey = Image.open(io.BytesIO(_rasterise(html_to_pdf(_PAGE.format(size=SEAL_SIZE_MM, svg=drawing)))))
    alpha = ImageOps.invert(grey.convert("L"))
    indexed = Image.frombytes("P", alpha.size, alpha.tobytes())
    indexed.putpalette(list(ImageColor.getrgb(SEAL_COLOUR)) * 256)
    out = io.BytesIO()
    indexed.save(out, format="PNG", optimize=True, transparency=bytes(range(256)))
    return Picture("PNG", out.getvalue(), SEAL_SIZE_MM, SEAL_SIZE_MM)
