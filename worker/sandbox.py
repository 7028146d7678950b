"""Read untrusted documents in a child process that can be killed.

PDFium, libxml2, olefile and onnxruntime are big parsers fed with bytes from the open
internet; a crafted file can make any of them loop, eat memory or crash. So the carriers
that can (PDF, DOCX, DOC/WPS, images) are read in a child process, and whatever the
child does, the caller gets a :class:`~shared.record.Report` or a typed
:class:`~shared.errors.XxgkError` carrying the source and sha256 — never a dead worker.
HTML and plain text run in-process: their extractors are pure Python with their own
caps (element count, depth), and the child would only add its start-up cost.

Limits on the child (all from :class:`~shared.extract.limits.ExtractLimits`):

- **wall time**: the parent waits ``timeout_s`` for the answer, then SIGKILLs the child;
  OCR is the exception: before each page the child says "next page", and that page gets
  :data:`OCR_PAGE_BUDGET_S` of its own, so an honest 40-page scan on a busy box is not
  killed while a loop (inside a page or anywhere else) still is;
- **memory**: the parent watches the child's resident set (``/proc/<pid>/statm``) and
  kills it above ``memory_mb``; ``RLIMIT_AS`` is the hard backstop at ``memory_mb`` plus
  :data:`ADDRESS_SPACE_ALLOWANCE_MB`, because address space is not memory — onnxruntime
  maps ~1.2 GB of libraries, arenas and thread stacks to use ~0.63 GB on a 150-dpi page;
- **CPU**: ``RLIMIT_CPU`` (SIGXCPU) as a backstop should the parent itself be stopped;
- no core files, no file writes (``RLIMIT_FSIZE`` 0), few descriptors, and an environment
  without the worker's secrets (database URL, webhook secret).

The answer crosses the pipe as JSON validated by pydantic in the parent, never as a
pickle: a compromised child must not be able to run code in the worker.

Why a forkserver and not ``python -m`` per document (docs/DECISIONS.md, "Document
carriers"; figures in BENCHMARKS.md): the forkserver is one clean interpreter, started
once per worker process with the parsing modules preloaded, which forks a fresh child per
document in ~10 ms (a text PDF then costs ~+45 ms over in-process: the fork and a parser
with cold caches); a new interpreter per document pays ~+0.2 s of imports every time, more
on a busy box. Each child still reads exactly one document (``max-tasks-per-child=1``),
so nothing a hostile file does to a parser's state survives it. numpy, OpenCV and
onnxruntime are *not* preloaded: they start threads, and threads do not survive a fork.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import resource
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from structlog.typing import FilteringBoundLogger

from shared.errors import CorruptDocument, LimitExceeded, PermanentError, XxgkError
from shared.extract import ExtractLimits
from shared.logging import configure_logging, get_logger
from shared.parse import read_report
from shared.record import Report

log = get_logger(__name__)
# every event about a document names it: ``source`` (URL or path) and ``sha256`` are bound
# explicitly on a logger passed down (contextvars would not reach the forkserver's child, and
# test capture does not merge them)
Logger = FilteringBoundLogger

# magic numbers of the carriers whose parsers run in the child (PDF, zip/DOCX, OLE/DOC/WPS,
# PNG, JPEG, TIFF); everything else (HTML, text) is read in-process. The parent looks at
# magic bytes only: even sniffing a zip means parsing its central directory, which is the
# child's job.
SANDBOXED_MAGIC: dict[bytes, str] = {
    b"%PDF": "application/pdf",
    b"PK\x03\x04": "application/zip",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "application/x-ole-storage",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"II*\x00": "image/tiff",
    b"MM\x00*": "image/tiff",
}
# address space the child may map beyond memory_mb (libraries, arenas, thread stacks)
ADDRESS_SPACE_ALLOWANCE_MB = 1024
# how often the parent looks at the child's resident memory
WATCH_INTERVAL_S = 0.05
# wall time each OCR page may take, counted from the child's "next page" message (~4 s a page
# on an idle 2-vCPU box, 15-40 s on one loaded ten times over); a loop still ends at timeout_s
OCR_PAGE_BUDGET_S = 60.0
# a report is a few KB of JSON; anything this big is not one
MAX_ANSWER_BYTES = 16 * 1024 * 1024
MAX_OPEN_FILES = 256
# imported once in the forkserver, so each child starts warm (no thread-starting modules here)
PRELOAD = [
    "shared.parse",
    "shared.parse.report",
    "shared.rules",
    "shared.extract.pdf",
    "shared.extract.docx",
    "shared.extract.doc",
    "shared.extract.layout",
    "shared.extract.ocr",  # light: numpy, OpenCV and onnxruntime are imported only for a scan
    "worker.sandbox",
]
# the only environment a child keeps (no database URL, no webhook secret)
_KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "PYTHONHASHSEED")

_context_lock = threading.Lock()
_context: Any = None


def read_report_sandboxed(
    data: bytes,
    *,
    path: str | None = None,
    url: str | None = None,
    content_type: str | None = None,
    limits: ExtractLimits,
) -> Report:
    """:func:`shared.parse.read_report`, with the risky carriers read in a killable child."""
    sha256 = hashlib.sha256(data).hexdigest()
    locator = url or path
    media_type = _risky_carrier(data)
    if media_type is None:
        return read_report(data, path=path, url=url, content_type=content_type, limits=limits)
    doc_log = log.bind(source=locator, sha256=sha256)
    started = time.monotonic()
    try:
        report = _run_child(
            data, path=path, url=url, content_type=content_type, limits=limits, sha256=sha256, doc_log=doc_log
        )
    except XxgkError as exc:
        doc_log.info(
            "document_unreadable",
            media_type=media_type,
            error=exc.code,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        raise exc.with_source(locator, sha256) from None
    doc_log.debug(
        "document_read_sandboxed",
        media_type=media_type,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return report


# ---------------------------------------------------------------- parent side


def _risky_carrier(data: bytes) -> str | None:
    """The kind of binary carrier ``data`` starts as, or None for markup and text."""
    head = data[:1024].lstrip() if data[:1].isspace() else data[:8]
    return next((kind for magic, kind in SANDBOXED_MAGIC.items() if head.startswith(magic)), None)


def _get_context() -> Any:
    global _context  # noqa: PLW0603 - one forkserver per process, created on first use
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
        return _context


def _run_child(
    data: bytes,
    *,
    path: str | None,
    url: str | None,
    content_type: str | None,
    limits: ExtractLimits,
    sha256: str | None = None,
    doc_log: Logger = log,
) -> Report:
    context = _get_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(sender, data, path, url, content_type, limits, sha256),
        name="xxgk-document-sandbox",
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        answer = _await_answer(child, receiver, limits, doc_log=doc_log)
        report = _decode_answer(answer, limits)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
        if child.exitcode is not None:
            child.close()
    return report


def _await_answer(child: Any, receiver: Connection, limits: ExtractLimits, *, doc_log: Logger = log) -> bytes:
    deadline = time.monotonic() + limits.timeout_s
    ocr_pages = 0
    while True:
        # never wait past the deadline: an answer is taken only if it came in time
        if receiver.poll(max(min(WATCH_INTERVAL_S, deadline - time.monotonic()), 0)):
            try:
                message = receiver.recv_bytes(maxlength=MAX_ANSWER_BYTES)
            except EOFError:
                child.join(timeout=5)
                raise _death(child.exitcode, limits, doc_log=doc_log) from None
            except OSError as exc:  # over maxlength
                raise CorruptDocument(f"the sandboxed parser answered with garbage ({exc})") from None
            pages = _ocr_pages_announced(message, limits)
            if pages is None:
                return message
            deadline = max(deadline, time.monotonic() + pages * OCR_PAGE_BUDGET_S)
            ocr_pages += pages
            if ocr_pages > limits.max_pages:
                child.kill()
                raise LimitExceeded(f"the document has more than {limits.max_pages} pages to OCR")
            continue
        resident_mb = _resident_mb(child.pid)
        if resident_mb is not None and resident_mb > limits.memory_mb:
            child.kill()
            doc_log.warning(
                "sandbox_child_killed",
                reason="memory",
                resident_mb=round(resident_mb),
                limit_mb=limits.memory_mb,
            )
            raise LimitExceeded(_over_memory(limits))
        if time.monotonic() >= deadline:
            child.kill()
            doc_log.warning(
                "sandbox_child_killed", reason="timeout", timeout_s=limits.timeout_s, ocr_pages=ocr_pages
            )
            if ocr_pages:
                raise LimitExceeded(f"OCR of page {ocr_pages} took longer than {OCR_PAGE_BUDGET_S:g} s")
            raise LimitExceeded(f"reading the document took longer than {limits.timeout_s:g} s")
        if not child.is_alive() and not receiver.poll(0):
            child.join(timeout=5)
            raise _death(child.exitcode, limits, doc_log=doc_log)


def _ocr_pages_announced(message: bytes, limits: ExtractLimits) -> int | None:
    """The page count of an "OCR is starting" message, or None for the final answer."""
    if not message.startswith(b'{"ocr_pages":'):
        return None
    try:
        pages = int(json.loads(message)["ocr_pages"])
    except (ValueError, KeyError, TypeError):
        return None
    return max(0, min(pages, limits.max_pages))


def _resident_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None  # not Linux, or already gone: RLIMIT_AS still holds
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _over_memory(limits: ExtractLimits) -> str:
    """The kill message names the cap and the setting that raises it."""
    return (
        f"reading the document needed more than {limits.memory_mb} MB of memory "
        "(the XXGK_EXTRACT_MEMORY_MB limit)"
    )


def _death(exitcode: int | None, limits: ExtractLimits, *, doc_log: Logger = log) -> LimitExceeded:
    """What a child that died without answering most likely ran into."""
    if exitcode is not None and exitcode < 0:
        signal_number = -exitcode
        name = (
            signal.Signals(signal_number).name
            if signal_number in signal.valid_signals()
            else str(signal_number)
        )
        doc_log.warning("sandbox_child_died", signal=name, limit_mb=limits.memory_mb)
        if signal_number == signal.SIGXCPU:
            return LimitExceeded("reading the document used up its CPU-time limit")
        return LimitExceeded(
            f"the document parser was killed by {name} (its {limits.memory_mb} MB memory cap, "
            "XXGK_EXTRACT_MEMORY_MB, or a crash on malformed input)"
        )
    doc_log.warning("sandbox_child_died", exitcode=exitcode)
    return LimitExceeded(f"the document parser exited ({exitcode}) without an answer")


def _permanent_errors() -> dict[str, type[PermanentError]]:
    found: dict[str, type[PermanentError]] = {}
    stack: list[type[PermanentError]] = [PermanentError]
    while stack:
        cls = stack.pop()
        found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


def _decode_answer(answer: bytes, limits: ExtractLimits) -> Report:
    try:
        payload = json.loads(answer)
        peak = payload.get("peak_rss_mb")
        if isinstance(peak, int | float) and peak > limits.memory_mb:
            # finished between two looks of the watchdog, but over the cap all the same
            raise LimitExceeded(_over_memory(limits))
        if "error" in payload:
            cls = _permanent_errors().get(str(payload["error"]), CorruptDocument)
            raise cls(str(payload.get("message", "")))
        report = Report.model_validate(payload["report"])
        report.evidence = type(report.evidence).model_validate(payload["evidence"])
        return report
    except XxgkError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptDocument(f"the sandboxed parser answered with garbage ({exc})") from None


# ---------------------------------------------------------------- child side


def _child_main(  # noqa: PLR0917 - multiprocessing passes a target's arguments by position
    sender: Connection,
    data: bytes,
    path: str | None,
    url: str | None,
    content_type: str | None,
    limits: ExtractLimits,
    sha256: str | None = None,
) -> None:
    # the child's own events (a parser crash, an rlimit refused) name the document too
    doc_log = log.bind(source=url or path, sha256=sha256 or hashlib.sha256(data).hexdigest())
    _confine(limits, doc_log=doc_log)

    def announce_ocr(pages: int) -> None:
        sender.send_bytes(json.dumps({"ocr_pages": pages}).encode("ascii"))

    from shared.extract import ocr

    ocr.on_ocr_pages = announce_ocr
    try:
        report = read_report(data, path=path, url=url, content_type=content_type, limits=limits)
        payload: dict[str, Any] = {
            "report": report.model_dump(mode="json"),
            "evidence": report.evidence.model_dump(mode="json"),
        }
    except XxgkError as exc:
        payload = {"error": type(exc).__name__, "message": exc.message}
    except MemoryError:
        payload = {"error": "LimitExceeded", "message": _over_memory(limits)}
    except RecursionError:
        payload = {"error": "LimitExceeded", "message": "the document nests too deeply"}
    except Exception as exc:
        doc_log.exception("sandbox_parser_crashed")
        payload = {
            "error": "CorruptDocument",
            "message": f"the parser failed on this document ({type(exc).__name__}: {exc})",
        }
    # ru_maxrss is in KiB on Linux
    payload["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        sender.send_bytes(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    finally:
        sender.close()


def _confine(limits: ExtractLimits, *, doc_log: Logger = log) -> None:
    """Rlimits and a scrubbed environment, set before the child touches the document."""
    # the child's stdout is the parent's (the CLI prints JSON there): nothing a parser
    # library prints may land in it, and our own events go to stderr as JSON
    os.dup2(2, 1)
    configure_logging(json=True, level="WARNING")
    address_space = (limits.memory_mb + ADDRESS_SPACE_ALLOWANCE_MB) * 1024 * 1024
    wall_seconds = limits.timeout_s + limits.max_pages * OCR_PAGE_BUDGET_S
    cpu_seconds = math.ceil(wall_seconds * max(os.cpu_count() or 1, 1)) + 1
    for limit, value in (
        (resource.RLIMIT_AS, address_space),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
    ):
        _, hard = resource.getrlimit(limit)
        wanted = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(limit, (wanted, wanted if limit != resource.RLIMIT_NOFILE else hard))
        except (ValueError, OSError):
            doc_log.warning("sandbox_rlimit_not_set", limit=limit)
    # a write past RLIMIT_FSIZE fails with EFBIG instead of killing the child
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for key in list(os.environ):
        if key not in _KEPT_ENVIRONMENT:
            del os.environ[key]
