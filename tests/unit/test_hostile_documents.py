"""Hostile documents end in a typed error within their limits, and the worker lives on.

Every file here is generated at test time (nothing big is committed). Each is read two
ways: by the pure extractor, which must refuse it with the right error class, and
through :func:`worker.sandbox.read_report_sandboxed`, the path workers use, which must
turn anything — a refusal, a killed child — into a :class:`DocumentError` carrying the
source and sha256, after which the same process still reads a good report.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import multiprocessing
import random
import threading
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from reportlab.pdfgen import canvas

from shared.errors import (
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    LimitExceeded,
    NotAReport,
    OcrUnavailable,
    PermanentError,
    UnsafeDocument,
)
from shared.extract import ExtractLimits, extract_document
from shared.extract.docx import parse_xml
from shared.parse import read_report
from worker import sandbox
from worker.sandbox import read_report_sandboxed

HAS_OCR = (
    importlib.util.find_spec("rapidocr") is not None and importlib.util.find_spec("onnxruntime") is not None
)
# tight enough that a runaway shows, loose enough for a busy CI box
LIMITS = ExtractLimits(timeout_s=30.0, memory_mb=768)

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx(document_xml: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("word/document.xml", document_xml)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


@functools.cache
def zip_bomb_docx() -> bytes:
    # 40 MB of spaces deflate to ~40 KB: a 1000x ratio
    body = (
        b"<w:document "
        + _W.encode()
        + b"><w:body><w:p><w:r><w:t>"
        + b" " * 40_000_000
        + b"</w:t></w:r></w:p></w:body></w:document>"
    )
    return _docx(body)


def billion_laughs_docx() -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
        f"<w:document {_W}><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    return _docx(body.encode())


def deeply_nested_docx(depth: int = 300) -> bytes:
    inner = "<w:p><w:r><w:t>底</w:t></w:r></w:p>"
    for _ in range(depth):
        inner = f"<w:tbl><w:tr><w:tc>{inner}</w:tc></w:tr></w:tbl>"
    return _docx(f"<w:document {_W}><w:body>{inner}</w:body></w:document>".encode())


def many_members_docx() -> bytes:
    return _docx(
        f"<w:document {_W}><w:body/></w:document>".encode(),
        {f"word/media/{i}.xml": b"<a/>" for i in range(1001)},
    )


def _pdf(objects: list[bytes], *, root: int = 1, prev_loop: bool = False) -> bytes:
    """A hand-made PDF with a correct xref; ``prev_loop`` points the trailer's /Prev at its own xref."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    prev = b" /Prev %d" % xref_at if prev_loop else b""
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, root, prev, xref_at)
    )
    return out.getvalue()


def _stream(content: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(content), entries) + content + b"\nendstream"


def cyclic_pdf() -> bytes:
    """The page tree contains itself, the page's form XObject draws itself, and the
    cross-reference chain points back at itself."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 /Parent 2 0 R >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
            b"/Resources << /XObject << /X1 5 0 R >> >> >>",
            _stream(b"/X1 Do"),
            _stream(
                b"/X1 Do",
                b"/Type /XObject /Subtype /Form /BBox [0 0 200 200] "
                b"/Resources << /XObject << /X1 5 0 R >> >> ",
            ),
        ],
        prev_loop=True,
    )


def report_pdf(pages: int = 2) -> bytes:
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(300, 300))
    for number in range(pages):
        c.drawString(40, 250, f"page {number + 1}")
        c.showPage()
    c.save()
    return buffer.getvalue()


def truncated_pdf() -> bytes:
    data = report_pdf(3)
    return data[: len(data) // 2]


def noise_png() -> bytes:
    rng = random.Random(4)
    image = Image.frombytes("L", (480, 480), bytes(rng.getrandbits(8) for _ in range(480 * 480)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# name, bytes, file name, the error class the pure extractor must raise
HOSTILE = [
    ("zip bomb", zip_bomb_docx, "bomb.docx", UnsafeDocument),
    ("billion laughs", billion_laughs_docx, "laughs.docx", UnsafeDocument),
    ("tables nested 300 deep", deeply_nested_docx, "deep.docx", LimitExceeded),
    ("1001 zip members", many_members_docx, "members.docx", UnsafeDocument),
    ("cyclic object graph", cyclic_pdf, "cyclic.pdf", DocumentError),
    ("truncated pdf", truncated_pdf, "truncated.pdf", CorruptDocument),
    ("200 pages", lambda: report_pdf(200), "long.pdf", LimitExceeded),
    (
        "garbage OLE",
        lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8,
        "garbage.doc",
        CorruptDocument,
    ),
]


@pytest.mark.parametrize(("name", "make", "filename", "error"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_the_extractor_refuses_a_hostile_document_with_a_typed_error(name, make, filename, error) -> None:
    with pytest.raises(error):
        extract_document(make(), filename=filename, limits=LIMITS)


@pytest.mark.parametrize(("name", "make", "filename", "error"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_the_sandbox_turns_a_hostile_document_into_a_recorded_error(name, make, filename, error) -> None:
    data = make()
    with pytest.raises(DocumentError) as caught:
        read_report_sandboxed(data, path=filename, limits=LIMITS)
    assert isinstance(caught.value, error)
    assert caught.value.source == filename
    assert caught.value.sha256 == hashlib.sha256(data).hexdigest()
    assert "took longer" not in caught.value.message  # refused on its merits, not by the clock


def test_entities_are_never_expanded_even_past_the_dtd_check() -> None:
    part = billion_laughs_docx()
    with zipfile.ZipFile(io.BytesIO(part)) as archive:
        xml = archive.read("word/document.xml")
    # defence in depth: should a DTD get past the byte check, the XML parser refuses to
    # amplify entities rather than building 10^9 characters
    with pytest.raises(UnsafeDocument):
        parse_xml(xml, "word/document.xml")
    small = xml.replace(b"&lol9;", b"&lol1;")
    root = parse_xml(small, "word/document.xml")
    assert len("".join(root.itertext())) < 100  # resolve_entities=False: references stay references


@pytest.mark.slow
def test_an_image_of_noise_ends_in_a_typed_error() -> None:
    if not HAS_OCR:
        with pytest.raises(OcrUnavailable):
            read_report_sandboxed(noise_png(), path="noise.png", limits=LIMITS)
        return
    with pytest.raises(PermanentError) as caught:
        read_report_sandboxed(noise_png(), path="noise.png", limits=LIMITS)
    assert isinstance(caught.value, EmptyDocument | NotAReport | LimitExceeded)


# ---------------------------------------------------------------- the sandbox's own limits


def test_a_child_over_its_memory_cap_is_killed_and_reported(seeds_dir: Path) -> None:
    data = (seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered.pdf").read_bytes()
    # less than the child needs just to exist: the watchdog (or RLIMIT_AS) must stop it
    with pytest.raises(LimitExceeded, match="MB"):
        read_report_sandboxed(data, path="report.pdf", limits=ExtractLimits(memory_mb=8, timeout_s=30))


def test_a_child_over_its_wall_time_is_killed_and_reported(seeds_dir: Path) -> None:
    data = (seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered.docx").read_bytes()
    with pytest.raises(LimitExceeded, match="took longer"):
        read_report_sandboxed(data, path="report.docx", limits=ExtractLimits(timeout_s=0.001))


def test_a_child_that_dies_by_a_signal_becomes_limit_exceeded() -> None:
    assert "SIGSEGV" in str(sandbox._death(-11, LIMITS))
    assert "CPU" in str(sandbox._death(-24, LIMITS))
    assert isinstance(sandbox._death(3, LIMITS), LimitExceeded)


def test_a_garbled_answer_from_the_child_is_a_corrupt_document() -> None:
    with pytest.raises(CorruptDocument):
        sandbox._decode_answer(b"\x80not json", LIMITS)
    with pytest.raises(UnsafeDocument, match="zip"):
        sandbox._decode_answer(b'{"error": "UnsafeDocument", "message": "zip bomb"}', LIMITS)
    # an error name outside the permanent-error tree is not trusted
    with pytest.raises(CorruptDocument):
        sandbox._decode_answer(b'{"error": "SystemExit", "message": "x"}', LIMITS)


def test_the_worker_reads_a_good_report_after_the_hostile_set(seeds_dir: Path) -> None:
    for _, make, filename, _ in HOSTILE[:3]:
        with pytest.raises(DocumentError):
            read_report_sandboxed(make(), path=filename, limits=LIMITS)
    path = seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered.pdf"
    sandboxed = read_report_sandboxed(path.read_bytes(), path=str(path), limits=LIMITS)
    in_process = read_report(path.read_bytes(), path=str(path), limits=LIMITS)
    assert sandboxed.to_json_dict() == in_process.to_json_dict()
    assert sandboxed.evidence == in_process.evidence  # evidence crosses the pipe too
    assert sandboxed.agency == "官坡镇人民政府"


class _FakeChild:
    """Stands in for the child process: alive, no /proc entry, killable."""

    pid = None
    exitcode = None

    def __init__(self) -> None:
        self.killed = False

    def is_alive(self) -> bool:
        return not self.killed

    def kill(self) -> None:
        self.killed = True

    def join(self, timeout: float | None = None) -> None:
        return None


def test_each_ocr_page_heartbeat_buys_that_page_its_own_time() -> None:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    limits = ExtractLimits(timeout_s=0.05)
    sender.send_bytes(b'{"ocr_pages": 1}')  # queued before the parent starts waiting
    late = threading.Timer(0.5, lambda: sender.send_bytes(b'{"report": {}}'))
    late.start()
    try:
        # well past timeout_s, but inside the page's budget: the answer is taken
        assert sandbox._await_answer(_FakeChild(), receiver, limits) == b'{"report": {}}'
    finally:
        late.join()
        receiver.close()
        sender.close()


def test_more_ocr_heartbeats_than_pages_allowed_is_a_limit() -> None:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    for _ in range(4):
        sender.send_bytes(b'{"ocr_pages": 1}')
    child = _FakeChild()
    try:
        with pytest.raises(LimitExceeded, match="more than 3 pages"):
            sandbox._await_answer(child, receiver, ExtractLimits(max_pages=3))
        assert child.killed
    finally:
        receiver.close()
        sender.close()
