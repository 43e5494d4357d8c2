"""The README's pictures of the dashboard (docs/screenshots/*.png), kept current by the tests.

A picture is written only when what it shows changed: the same scenario on the same
browser gives the same pixels, so a re-run leaves `git status` clean. "The same" is
decided on the decoded image (size and pixel rows), not the file's bytes, so a different
PNG encoder setting alone never rewrites a file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_of(png: bytes) -> tuple[bytes, bytes]:
    """The PNG's header (size, depth, colour type) and its decompressed pixel rows.

    The rows are still filtered (PNG's per-row predictors); Chromium's encoder picks them
    from the pixels alone, so equal rows mean equal pixels for its pictures."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG image")
    header = b""
    data = bytearray()
    offset = len(PNG_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        body = png[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
        elif kind == b"IEND":
            break
        offset += 12 + length
    return header, zlib.decompress(bytes(data))


def keep(name: str, png: bytes, folder: Path = SCREENSHOTS) -> bool:
    """Save `png` as `<folder>/<name>.png` unless the file already shows the same image;
    returns whether it was written."""
    path = folder / f"{name}.png"
    if path.exists():
        try:
            if image_of(path.read_bytes()) == image_of(png):
                return False
        except (ValueError, zlib.error, struct.error):
            pass  # a damaged file is replaced
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return True
