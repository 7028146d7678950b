"""Plain text (and Markdown) → paragraphs and cell grids.

Text reaches us from other tools' conversions, and the tables come in four shapes (the seeds
show the first three). Each is turned into a :class:`Table` whose blanks stay ``""`` in their
position, padded to a rectangle:

- **tabs** — one row a line, cells split on ``\\t``; leading empty cells are kept
  (``\\t\\t2.其他…\\t0\\t0``). Blank lines inside the run do not end the table.
- **pipes** — ``a | b | c |``: the final pipe closes the row, ``||||`` are empty cells.
- **lines** — one cell a line, each indented by a tab; a blank line ends a row; a line
  *without* the tab continues the cell above (``\\t商业`` + ``企业`` is ``"商业\\n企业"``).
  Cells may be padded with spaces, NBSP or U+3000. Tab-indented prose is not a table: rows
  holding a cell longer than any form label become paragraphs again.
- **markdown** — ``| a | b |`` with a ``|---|`` separator row (the media type is then
  ``text/markdown``).

Every other non-empty line is one :class:`Paragraph`. A crawler's header block (``标题: …``,
``发布时间: …`` … up to a ``==== 正文 ====`` line) goes into ``Document.meta``. When there are no
grids at all but form labels are glued to digit runs (``规章000规范性文件898989``), the cell
boundaries were lost upstream: ``Document.flat`` tells the parser to recover them by arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from shared.errors import CorruptDocument, EmptyDocument, LimitExceeded
from shared.extract.blocks import Block, Document, Paragraph, Table
from shared.extract.encoding import decode_bytes
from shared.extract.limits import ExtractLimits
from shared.templates import TEMPLATES

PLAIN, MARKDOWN = "text/plain", "text/markdown"
Grid = tuple[tuple[str, ...], ...]

# the keys a third-party crawler writes above the page text (corpus/raw/0*.txt, P*.txt)
CRAWLER_HEADER_KEYS = ("标题", "发布时间", "文号", "发布机构", "栏目", "原文链接")
_BODY_SEPARATOR = re.compile(r"^\s*={3,}\s*正文\s*={3,}\s*$")
_HEADER_LINE = re.compile(r"^\s*([^:：\s]{1,12})\s*[:：]\s*(.*?)\s*$")
_HEADER_WINDOW = 40  # lines; the block is at the very top

# The longest form labels are under 40 characters (（本列数据的勾稽关系为：…）, 2.申请人逾期未按…);
# a "cell" longer than this is a tab-indented paragraph.
MAX_CELL_CHARS = 80
# a line without the tab continues the cell above only when it is this short (wrapped labels)
_MAX_CONTINUATION_CHARS = 40
_SECTION_HEADING = re.compile(r"^\s*[一二三四五六七八九十]+\s*[、.．]")

_WORD_DEBRIS = re.compile(r"\[bookmark:\s*[^\]]*\]")
_INNER_PADDING = re.compile(r"[ \xa0\u3000]+")
_MARKDOWN_SEPARATOR = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
# more replacement characters than this share: the bytes were not text in the first place
_MAX_REPLACED_SHARE = 0.05


def extract_text(data: bytes, *, limits: ExtractLimits, content_type: str | None = None) -> Document:
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"text is {len(data)} bytes, over the {limits.max_bytes}-byte cap")
    text, encoding = decode_bytes(data, content_type=content_type)
    if not text.strip():
        raise EmptyDocument("the text is empty")
    replaced = text.count("\ufffd")
    if "\x00" in text or replaced > _MAX_REPLACED_SHARE * len(text):
        raise CorruptDocument("the bytes do not decode to readable text")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    if text.count("\n") > limits.max_text_lines:
        raise LimitExceeded(f"text has more than {limits.max_text_lines} lines")

    lines = text.split("\n")
    meta, start = _crawler_header(lines)
    blocks, markdown = _blocks(lines[start:])
    if not blocks:
        raise EmptyDocument("the text has no content")

    doc = Document(blocks=blocks, media_type=MARKDOWN if markdown else PLAIN, meta=meta)
    if encoding != "utf-8":
        doc.warnings.append(f"decoded as {encoding}")
    if replaced:
        doc.warnings.append(f"{replaced} undecodable bytes replaced")
    if not doc.tables and looks_flat(doc.text()):
        doc.flat = True
    return doc


# ---------------------------------------------------------------- flat (run-together) tables


def _flat_labels() -> dict[str, str]:
    """Form row labels → a key, for spotting labels glued to their numbers."""
    labels: dict[str, str] = {}
    for template in TEMPLATES.values():
        for item in template.disclosure:
            for label in item.label.all:
                labels.setdefault(label, f"disclosure:{item.key}")
        for row in template.application_rows:
            for label in row.all:
                if len(label) >= 4:  # 总计, 其他 are everywhere in prose
                    labels.setdefault(label, f"application:{row.key}")
    return labels


_FLAT_LABELS = _flat_labels()
_LABEL_ALTERNATIVES = "|".join(re.escape(label) for label in sorted(_FLAT_LABELS, key=len, reverse=True))
_LABEL_THEN_DIGITS = re.compile(f"({_LABEL_ALTERNATIVES})[ \u3000]*\\d")
# prose names a form row with a number now and then ("主动公开规章13件，行政规范性文件60件");
# a run-together table does it for row after row
_FLAT_MIN_LABELS = 3
# a report's text is tens of kilobytes; the label scan stops here on pathological input
_FLAT_SCAN_CHARS = 1_000_000


def looks_flat(text: str) -> bool:
    """True when form labels are immediately followed by digit runs at least three times over:
    a table whose cell boundaries were lost (``一、本年新收政府信息公开申请数量230 000023``)."""
    keys = {_FLAT_LABELS[m.group(1)] for m in _LABEL_THEN_DIGITS.finditer(text, 0, _FLAT_SCAN_CHARS)}
    return len(keys) >= _FLAT_MIN_LABELS


# ---------------------------------------------------------------- header block


def _crawler_header(lines: list[str]) -> tuple[dict[str, str], int]:
    """``(meta, index of the first body line)``; ``({}, 0)`` when there is no header block."""
    for index, line in enumerate(lines[:_HEADER_WINDOW]):
        if not _BODY_SEPARATOR.match(line):
            continue
        meta: dict[str, str] = {}
        for head in lines[:index]:
            match = _HEADER_LINE.match(head)
            if match and match.group(1) in CRAWLER_HEADER_KEYS and match.group(2):
                meta.setdefault(match.group(1), match.group(2))
        if meta:
            return meta, index + 1
        return {}, 0
    return {}, 0


# ---------------------------------------------------------------- line shapes


def _is_blank(line: str) -> bool:
    # "\t" alone is an empty cell of the one-cell-a-line layout, not a blank line
    return "\t" not in line and not line.strip()


def _is_cell_line(line: str) -> bool:
    """One cell of the one-cell-a-line layout: a leading tab and no other."""
    return line.startswith("\t") and "\t" not in line[1:]


def _is_markdown_row(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= 2 and stripped.startswith("|") and stripped.endswith("|") and "\t" not in line


def _is_pipe_row(line: str) -> bool:
    stripped = line.strip()
    return stripped.endswith("|") and not stripped.startswith("|") and "\t" not in line


def _is_tab_row(line: str) -> bool:
    if "\t" not in line:
        return False
    # a lone tab-indented paragraph is prose, even next to a table
    return not (_is_cell_line(line) and len(line.strip()) > MAX_CELL_CHARS)


def _clean_cell(text: str) -> str:
    return _INNER_PADDING.sub(" ", _WORD_DEBRIS.sub("", text)).strip()


def _clean_paragraph(text: str) -> str:
    return _WORD_DEBRIS.sub("", text).strip()


# ---------------------------------------------------------------- segmentation


def _blocks(lines: list[str]) -> tuple[list[Block], bool]:
    """Split the body into blocks; the flag says a Markdown table was seen."""
    blocks: list[Block] = []
    markdown = False
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if _is_blank(line):
            i += 1
        elif _is_markdown_row(line):
            end = _run_end(lines, i, _is_markdown_row, bridge_blanks=False)
            table, separated = _markdown_table(lines[i:end])
            markdown = markdown or separated
            _emit(blocks, table, lines[i:end], "markdown")
            i = end
        elif _is_pipe_row(line):
            end = _run_end(lines, i, _is_pipe_row, bridge_blanks=True)
            run = lines[i:end]
            _emit(blocks, _grid(_pipe_cells(row) for row in run if not _is_blank(row)), run, "pipes")
            i = end
        elif _is_tab_row(line):
            end = _run_end(lines, i, _is_tab_row, bridge_blanks=True)
            run = lines[i:end]
            if all(_is_cell_line(row) for row in run if not _is_blank(row)):
                i = _one_cell_a_line(lines, i, blocks)
            else:
                rows = (row.split("\t") for row in run if not _is_blank(row))
                _emit(blocks, _grid([_clean_cell(cell) for cell in row] for row in rows), run, "tabs")
                i = end
        else:
            blocks.append(Paragraph(_clean_paragraph(line)))
            i += 1
    return [b for b in blocks if not isinstance(b, Paragraph) or b.text], markdown


def _run_end(lines: list[str], start: int, accept: Callable[[str], bool], *, bridge_blanks: bool) -> int:
    """Index after the last accepted line of the run beginning at ``start``; blank lines are
    crossed (when allowed) only if an accepted line follows them."""
    end = j = start
    while j < len(lines):
        if accept(lines[j]):
            j += 1
            end = j
        elif bridge_blanks and _is_blank(lines[j]):
            j += 1
        else:
            break
    return end


def _emit(blocks: list[Block], grid: Grid | None, source: list[str], origin: str) -> None:
    if grid is not None:
        blocks.append(Table(rows=grid, origin=origin))
        return
    # nothing tabular survived (every cell blank): keep whatever text there was
    blocks.extend(Paragraph(_clean_paragraph(line)) for line in source)


def _grid(rows: Iterable[list[str]]) -> Grid | None:
    """Rows padded to a rectangle; rows with nothing in them dropped; ``None`` if none is left."""
    kept = [row for row in rows if any(row)]
    if not kept:
        return None
    width = max(len(row) for row in kept)
    return tuple(tuple(row) + ("",) * (width - len(row)) for row in kept)


def _pipe_cells(line: str) -> list[str]:
    stripped = line.strip()
    return [_clean_cell(cell) for cell in stripped[:-1].split("|")]  # the last pipe closes the row


def _markdown_table(lines: list[str]) -> tuple[Grid | None, bool]:
    rows: list[list[str]] = []
    separated = False
    for line in lines:
        stripped = line.strip()
        if _MARKDOWN_SEPARATOR.match(stripped) and "-" in stripped:
            separated = True
            continue
        cells = _UNESCAPED_PIPE.split(stripped[1:-1])
        rows.append([_clean_cell(cell.replace("\\|", "|")) for cell in cells])
    return _grid(rows), separated


def _is_continuation(line: str) -> bool:
    stripped = line.strip()
    return (
        "\t" not in line
        and bool(stripped)
        and len(stripped) <= _MAX_CONTINUATION_CHARS
        and not _SECTION_HEADING.match(stripped)
    )


def _one_cell_a_line(lines: list[str], start: int, blocks: list[Block]) -> int:
    """Read the one-cell-a-line layout from ``start``; append its tables and any tab-indented
    prose to ``blocks``; return the index after it."""
    rows: list[list[str]] = []  # each cell keeps its raw lines, cleaned at the end
    row: list[list[str]] = []
    i, n = start, len(lines)
    end = start
    while i < n:
        line = lines[i]
        if _is_cell_line(line):
            row.append([line[1:]])
            end = i + 1
        elif row and _is_continuation(line):
            row[-1].append(line)
            end = i + 1
        elif _is_blank(line):
            if row:
                rows.append(_join_cells(row))
                row = []
        else:
            break
        i += 1
    if row:
        rows.append(_join_cells(row))
    _emit_cell_rows(rows, blocks)
    return end


def _join_cells(row: list[list[str]]) -> list[str]:
    return ["\n".join(part for part in map(_clean_cell, cell) if part) for cell in row]


def _emit_cell_rows(rows: list[list[str]], blocks: list[Block]) -> None:
    """Runs of short-celled rows are tables; rows holding prose are paragraphs again."""
    pending: list[list[str]] = []

    def flush() -> None:
        multi = sum(1 for r in pending if sum(1 for cell in r if cell) >= 2)
        if multi >= 2:  # a table has several rows of several cells
            grid = _grid(pending)
            if grid is not None:
                blocks.append(Table(rows=grid, origin="lines"))
        else:
            blocks.extend(Paragraph(part) for r in pending for cell in r for part in cell.split("\n") if part)
        pending.clear()

    for row in rows:
        if any(len(cell) > MAX_CELL_CHARS for cell in row):
            flush()
            blocks.extend(Paragraph(part) for cell in row for part in cell.split("\n") if part)
        else:
            pending.append(row)
    flush()
