"""Small PDFs with real text (one line per page, Helvetica) for the signature tests, written by pydyf as
WeasyPrint writes our agreements."""

from __future__ import annotations

from io import BytesIO

import pydyf


def text_pdf(*lines: bytes, identifier: bool = False, compress: bool = False) -> bytes:
    """One page per line, the line at the top; with `compress`, a cross-reference stream and object streams."""
    document = pydyf.PDF()
    font = pydyf.Dictionary({"Type": "/Font", "Subtype": "/Type1", "BaseFont": "/Helvetica"})
    document.add_object(font)
    for line in lines:
        content = pydyf.Stream([b"BT /F1 24 Tf 72 700 Td (" + line + b") Tj ET"])
        document.add_object(content)
        page = pydyf.Dictionary(
            {
                "Type": "/Page",
                "Parent": document.pages.reference,
                "MediaBox": pydyf.Array([0, 0, 595, 842]),
                "Contents": content.reference,
                "Resources": pydyf.Dictionary({"Font": pydyf.Dictionary({"F1": font.reference})}),
            }
        )
        document.add_page(page)
    output = BytesIO()
    document.write(output, identifier=identifier, compress=compress)
    return output.getvalue()
