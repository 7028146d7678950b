"""Every sandbox event about a document names it (``source``, ``sha256``); memory kills name the cap."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.errors import LimitExceeded
from shared.extract import ExtractLimits
from shared.extract import ocr as ocr_module
from shared.settings import Settings
from worker import sandbox
from worker.sandbox import read_report_sandboxed

# PDF magic is enough to be sent to the child; what follows is not a PDF
NOT_A_PDF = b"%PDF-1.4\n" + b"\x00not a pdf\n" * 64
SHA256 = hashlib.sha256(NOT_A_PDF).hexdigest()
SOURCE = "/reports/broken.pdf"


def _about_the_document(logs: list[dict[str, Any]]) -> None:
    assert logs
    for entry in logs:
        assert entry.get("source") == SOURCE, entry
        assert entry.get("sha256") == SHA256, entry


def test_a_memory_kill_is_logged_with_source_sha256_and_the_limit() -> None:
    limits = ExtractLimits(memory_mb=8, timeout_s=30)
    with capture_logs() as logs, pytest.raises(LimitExceeded, match="8 MB") as raised:
        read_report_sandboxed(NOT_A_PDF, path=SOURCE, limits=limits)
    assert raised.value.source == SOURCE and raised.value.sha256 == SHA256
    _about_the_document(logs)
    # killed by the watchdog, or over the cap by its own peak report: either way the cap is named
    assert "XXGK_EXTRACT_MEMORY_MB" in str(raised.value)
    assert logs[-1]["event"] == "document_unreadable"


@pytest.fixture(scope="module")
def slow_pdf() -> bytes:
    """80 pages of text: ~0.5 s to read, so a 1 ms limit kills it however loaded the machine is
    (the 600-byte non-PDF above could be refused before a busy parent's timer fired)."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for page in range(80):
        for line in range(60):
            pdf.drawString(50, 800 - line * 12, f"p{page} r{line} xxgk {line * 7} {line * 13}")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def test_a_timeout_kill_is_logged_with_source_and_sha256(slow_pdf: bytes) -> None:
    with capture_logs() as logs, pytest.raises(LimitExceeded, match="took longer"):
        read_report_sandboxed(slow_pdf, path=SOURCE, limits=ExtractLimits(timeout_s=0.001))
    assert logs and all(
        e.get("source") == SOURCE and e.get("sha256") == hashlib.sha256(slow_pdf).hexdigest() for e in logs
    )
    assert [e["event"] for e in logs] == ["sandbox_child_killed", "document_unreadable"]
    assert logs[0]["reason"] == "timeout"


def test_an_unreadable_document_is_logged_with_source_and_sha256(slow_pdf: bytes) -> None:
    with capture_logs() as logs, pytest.raises(LimitExceeded):
        read_report_sandboxed(
            slow_pdf, url="https://example.gov.cn/r.pdf", limits=ExtractLimits(timeout_s=0.001)
        )
    digest = hashlib.sha256(slow_pdf).hexdigest()
    assert logs and all(e["source"] == "https://example.gov.cn/r.pdf" and e["sha256"] == digest for e in logs)


def test_a_child_death_names_the_document_and_the_memory_limit() -> None:
    doc_log = sandbox.log.bind(source=SOURCE, sha256=SHA256)
    with capture_logs() as logs:
        error = sandbox._death(-9, ExtractLimits(memory_mb=2048), doc_log=doc_log)
        sandbox._death(3, ExtractLimits(), doc_log=doc_log)
    assert "2048 MB" in str(error) and "XXGK_EXTRACT_MEMORY_MB" in str(error)
    _about_the_document(logs)
    assert logs[0]["limit_mb"] == 2048


class _Sender:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        return None


@pytest.fixture
def child_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the child's code here: without its rlimits and environment scrub, OCR hook restored."""
    monkeypatch.setattr(sandbox, "_confine", lambda limits, doc_log=None: None)
    monkeypatch.setattr(ocr_module, "on_ocr_pages", getattr(ocr_module, "on_ocr_pages", None))
    yield


def test_a_parser_crash_in_the_child_names_the_document(
    monkeypatch: pytest.MonkeyPatch, child_in_process: None
) -> None:
    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(sandbox, "read_report", crash)
    sender = _Sender()
    with capture_logs() as logs:
        sandbox._child_main(sender, NOT_A_PDF, SOURCE, None, None, ExtractLimits())  # type: ignore[arg-type]
    _about_the_document(logs)
    assert [e["event"] for e in logs] == ["sandbox_parser_crashed"]
    assert b"CorruptDocument" in sender.sent[-1]


def test_the_memory_cap_default_leaves_room_for_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    # OCR of a scan peaks around 1 GB resident (seed 004 at ~1030 MB): 1024 killed it now and then
    monkeypatch.delenv("XXGK_EXTRACT_MEMORY_MB", raising=False)
    assert ExtractLimits().memory_mb == 2048
    assert Settings().extract_memory_mb == 2048
    assert ExtractLimits.from_settings(Settings()).memory_mb == 2048
    assert "2048 MB" in sandbox._over_memory(ExtractLimits())
