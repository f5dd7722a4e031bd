"""Reading the portal's PDFs in tests without a PDF library."""

from __future__ import annotations

import re
import zlib


def pdf_parts(pdf: bytes) -> list[bytes]:
    """The PDF's bytes followed by each of its compressed streams, inflated."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return parts
