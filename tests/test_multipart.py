"""Unit tests for chatd.web.multipart and the helpers of chatd.files.sniffing: reading uploads, naming and typing them."""

import io

from twisted.trial.unittest import SynchronousTestCase

from chatd import errors
from chatd.files.uploads import clean_name, sniff
from chatd.web import multipart

BOUNDARY = "----chatdBoundary7MA4YWxkTrZu0gW"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


def body(*parts: tuple[bytes, bytes], preamble: bytes = b"") -> bytes:
    """A multipart body of (Content-Disposition value, data) parts."""
    out = preamble
    for disposition, data in parts:
        out += f"--{BOUNDARY}\r\n".encode() + b"Content-Disposition: " + disposition + b"\r\n"
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def read(raw: bytes, content_type: str = CTYPE, read_size: int | None = None) -> tuple[str, bytes]:
    original = multipart.READ_SIZE
    if read_size:
        multipart.READ_SIZE = read_size
    try:
        name, chunks = multipart.file_field(io.BytesIO(raw), content_type)
        return name, b"".join(chunks)
    finally:
        multipart.READ_SIZE = original


class FileFieldTests(SynchronousTestCase):
    def test_the_file_part_is_found_after_other_fields(self):
        """The file part is found after a preamble and other fields, its bytes unchanged."""
        data = bytes(range(256)) * 50
        raw = body((b'form-data; name="note"', b"hello"), (b'form-data; name="file"; filename="a.bin"', data),
                   preamble=b"ignored preamble\r\n")
        self.assertEqual(read(raw), ("a.bin", data))

    def test_any_read_size_gives_the_same_bytes(self):
        """The delimiter may straddle reads; data that looks like a delimiter but is not stays."""
        tricky = b"\r\n--" + BOUNDARY[:-1].encode() + b"x\r\n--\r\n" * 3 + b"end"
        raw = body((b'form-data; name="file"; filename="t.bin"', tricky))
        for size in (1, 2, 3, 7, 64, 1000):
            with self.subTest(read_size=size):
                self.assertEqual(read(raw, read_size=size), ("t.bin", tricky))

    def test_names_quoted_escaped_and_encoded(self):
        """File names are read as browsers send them: UTF-8, quoted with escapes, RFC 5987 ``filename*``, in any
        order; no file name gives an empty name."""
        cases = {
            b'form-data; name="file"; filename="r\xc3\xa9sum\xc3\xa9.pdf"': "résumé.pdf",
            b'form-data; name="file"; filename="say \\"hi\\".txt"': 'say "hi".txt',
            b"form-data; name=\"file\"; filename*=UTF-8''%E2%9C%93%20ok.txt": "✓ ok.txt",
            b'form-data; name="file"': "",
            b'form-data; filename="x.txt"; name="file"': "x.txt",
        }
        for disposition, name in cases.items():
            with self.subTest(disposition=disposition):
                self.assertEqual(read(body((disposition, b"x")))[0], name)

    def test_an_empty_file(self):
        """An empty file is read as an empty file, not as a missing one."""
        self.assertEqual(read(body((b'form-data; name="file"; filename="e"', b""))), ("e", b""))

    def test_refusals(self):
        """No file field, a truncated body, garbage: 400; not multipart or no boundary: 415."""
        no_file = body((b'form-data; name="other"; filename="x"', b"data"))
        truncated = body((b'form-data; name="file"; filename="x"', b"data"))[:-20]
        for raw, content_type, status in [
            (no_file, CTYPE, 400),
            (truncated, CTYPE, 400),
            (b"garbage", CTYPE, 400),
            (b"", CTYPE, 400),
            (no_file, "application/json", 415),
            (no_file, "multipart/form-data", 415),
            (no_file, None, 415),
        ]:
            with self.subTest(raw=raw[:20], content_type=content_type):
                with self.assertRaises(errors.ApiError) as caught:
                    read(raw, content_type)
                self.assertEqual(caught.exception.status, status)

    def test_quoted_boundary(self):
        """A boundary given in quotes in the Content-Type is found."""
        raw = body((b'form-data; name="file"; filename="q"', b"ok"))
        self.assertEqual(read(raw, f'multipart/form-data; boundary="{BOUNDARY}"'), ("q", b"ok"))


class NamingAndTypingTests(SynchronousTestCase):
    def test_clean_name(self):
        """File names are cut to their base name, lose control and direction characters, and are bounded; an
        empty or dot name becomes "file"."""
        cases = {
            "../../etc/passwd": "passwd",
            "..\\..\\boot.ini": "boot.ini",
            "a\x00b\x1fc\u202ed.txt": "abcd.txt",
            "  spaced.txt  ": "spaced.txt",
            "..": "file",
            "": "file",
            "dir/": "file",
            "<img src=x onerror=alert(1)>.png": "<img src=x onerror=alert(1)>.png",
            "x" * 300: "x" * 255,
        }
        for raw, cleaned in cases.items():
            with self.subTest(raw=raw):
                self.assertEqual(clean_name(raw), cleaned)

    def test_sniff(self):
        """The type comes from the first bytes: known images and PDF by their signatures, valid UTF-8 (HTML and SVG
        included) as plain text, anything else as application/octet-stream."""
        cases = {
            b"\x89PNG\r\n\x1a\n\x00\x00": "image/png",
            b"\xff\xd8\xff\xe0\x00\x10JFIF": "image/jpeg",
            b"GIF89a\x01\x00": "image/gif",
            b"RIFF\x00\x00\x00\x00WEBPVP8 ": "image/webp",
            b"%PDF-1.7\n": "application/pdf",
            b"<html><script>alert(1)</script>": "text/plain; charset=utf-8",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>": "text/plain; charset=utf-8",
            "héllo wörld".encode(): "text/plain; charset=utf-8",
            "ab✓".encode()[:-1]: "text/plain; charset=utf-8",  # a character cut by the sample's end
            b"\x00\x01\x02binary": "application/octet-stream",
            b"": "text/plain; charset=utf-8",
            b"\xc3\x28 invalid utf-8 in the middle": "application/octet-stream",
        }
        for head, content_type in cases.items():
            with self.subTest(head=head[:12]):
                self.assertEqual(sniff(head), content_type)
