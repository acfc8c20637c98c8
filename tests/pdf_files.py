"""PDF files for tests: multi-page ones from images (Pillow), and a genuinely password-protected one.

No PDF library here writes encryption, so `encrypted_pdf` builds a one-page PDF with the standard
security handler (revision 2, 40-bit RC4; PDF 1.7 spec, algorithms 3.2-3.4): a reader that opens
it with the user password gets a valid document, and without it a password error. Its page has no
content stream, so there is nothing else to encrypt.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from PIL import Image

PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def images_pdf(path: Path, pages: list[Image.Image], dpi: int) -> Path:
    """A PDF with one page per image, `dpi` pixels per inch (render it back at `dpi` for the same pixels)."""
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=float(dpi))
    return path


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def encrypted_pdf(path: Path, user_password: bytes = b"secret", owner_password: bytes = b"owner") -> Path:
    permissions = -44  # print and copy allowed; what the flags are does not matter here
    file_id = b"docdistill-test!"
    owner_key = hashlib.md5((owner_password + PAD)[:32]).digest()[:5]
    owner_entry = _rc4(owner_key, (user_password + PAD)[:32])
    key = hashlib.md5(
        (user_password + PAD)[:32] + owner_entry + struct.pack("<i", permissions) + file_id
    ).digest()[:5]
    user_entry = _rc4(key, PAD)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
        % (owner_entry.hex().encode(), user_entry.hex().encode(), permissions),
    ]
    body = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    hex_id = file_id.hex().encode()
    body += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 4 0 R /ID [<%s> <%s>] >>\n" % (
        len(objects) + 1,
        hex_id,
        hex_id,
    )
    body += b"startxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(body))
    return path
