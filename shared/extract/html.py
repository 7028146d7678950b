"""HTML pages → paragraphs and cell grids, in reading order.

We decode the bytes ourselves (:mod:`shared.extract.encoding`) and hand lxml UTF-8 with the
encoding fixed: with raw bytes lxml would follow the page's meta charset, which is wrong often
enough (a UTF-8 page declaring gb2312 came back with an empty title in the research runs).

What becomes what:

- running text (``p``, ``div``, ``h1``–``h6``, ``li``, lines split by ``br``) → one
  :class:`Paragraph` per line;
- each data table → one :class:`Table`: a rectangular grid with rowspan/colspan expanded,
  the merged text repeated into every slot, blanks as ``""``. Cell text keeps its line
  breaks (``本年新<br>制作数量`` → ``"本年新\\n制作数量"``) and never also appears as a
  paragraph;
- a layout table (one whose cells hold tables, or a single column of cells) is not data:
  its cells are walked like any other container, so inner tables come out as tables and the
  rest of its text as paragraphs;
- ``Document.meta``: ``title`` and every ``<meta name=… content=…>`` under its own name
  (ArticleTitle, PubDate, SiteName, SiteIDCode, ColumnName, …).

Word-export debris (``<o:p>``, ``<![if …]>``, ``<style>``, ``[bookmark: _GoBack]``) and
script/style/template content are dropped. Every walk is iterative: a hostile page can be deep
or huge, and both end in :class:`~shared.errors.LimitExceeded`, never in a RecursionError or
an exploding tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import lxml.etree

from shared.errors import CorruptDocument, EmptyDocument, LimitExceeded
from shared.extract.blocks import Block, Document, Paragraph, Table
from shared.extract.encoding import decode_bytes
from shared.extract.limits import ExtractLimits
from shared.extract.text import looks_flat

MEDIA_TYPE = "text/html"

# elements whose content is never body text
_SKIPPED = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "head",
        "title",
        "xml",
        "o:p",
        "iframe",
        "object",
        "embed",
        "svg",
        "math",
        "canvas",
        "select",
        "datalist",
        "textarea",
        "button",
    }
)
# elements that start and end a line of text
_BLOCK = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
_ROW_GROUPS = ("thead", "tbody", "tfoot")
_CELLS = ("td", "th")
MAX_ROWSPAN, MAX_COLSPAN = 200, 100
# expanding spans writes slots; a page of 200x100 spans must not turn into a billion of them.
# Per page; a real report's tables have about a thousand slots in all.
MAX_GRID_SLOTS = 1_000_000

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.I)
_WORD_DEBRIS = re.compile(r"\[bookmark:\s*[^\]]*\]")
_LEADING_DIGITS = re.compile(r"\s*(\d+)")
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
# a source line break between two CJK characters is not a space (CSS Text 3 segment breaks)
_SEGMENT_BREAK = re.compile(r"[ \t\r\f]*\n[ \t\r\n\f]*")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_WHITESPACE = re.compile(r"\s+")  # in str patterns \s covers \xa0 and \u3000 too
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def extract_html(data: bytes, *, limits: ExtractLimits, content_type: str | None = None) -> Document:
    """Parse an HTML page into blocks. Raises :class:`EmptyDocument` when the page has no body
    text, :class:`LimitExceeded` when it is too big, too deep or has too many elements."""
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"page is {len(data)} bytes, over the {limits.max_bytes}-byte cap")
    text, encoding = decode_bytes(data, content_type=content_type)
    text = _XML_DECLARATION.sub("", text, count=1)
    if not text.strip():
        raise EmptyDocument("the page is empty")
    _check_element_count(text, limits)

    root = _parse(text)
    _check_depth(root, limits)

    flow = _Flow()
    body = root.find("body")
    _walk(body if body is not None else root, flow)
    blocks = flow.finish()
    if not any(isinstance(b, Paragraph) or _has_text(b) for b in blocks):
        raise EmptyDocument("the page has no body text")

    doc = Document(blocks=blocks, media_type=MEDIA_TYPE, meta=_page_meta(root))
    if encoding != "utf-8":
        doc.warnings.append(f"decoded as {encoding}")
    replaced = text.count("\ufffd")
    if replaced:
        doc.warnings.append(f"{replaced} undecodable bytes replaced")
    if not doc.tables and looks_flat(doc.text()):
        doc.flat = True
    return doc


# ---------------------------------------------------------------- parsing and limits


def _check_element_count(text: str, limits: ExtractLimits) -> None:
    # opening tags, counted before lxml builds them: ~250 bytes of tree per element, and
    # 50 MB of "<td>1" is ten million elements (2.8 GB, 13 s) if nothing stops it first
    estimate = text.count("<") - text.count("</")
    if estimate > limits.max_html_elements:
        raise LimitExceeded(
            f"page has about {estimate} elements, over the {limits.max_html_elements}-element cap"
        )


def _parse(text: str) -> lxml.etree._Element:
    # lxml.etree's parser, not lxml.html's: the same libxml2 tree without the per-element
    # class lookup of HtmlElement, which cost a third of the extraction time
    parser = lxml.etree.HTMLParser(
        encoding="utf-8",
        remove_comments=True,  # also Word's <!--[if gte mso 9]>…<![endif]--> and <![if …]>
        remove_pis=True,
        no_network=True,
        # libxml2's own caps (depth 256, 10 MB text nodes) would truncate silently; we measure
        # depth ourselves and read its error log for anything it still refuses
        huge_tree=True,
    )
    try:
        root = lxml.etree.fromstring(text.encode("utf-8", errors="replace"), parser=parser)
    except (lxml.etree.XMLSyntaxError, ValueError) as exc:
        raise CorruptDocument(f"the page cannot be parsed as HTML ({exc})") from None
    for entry in parser.error_log:
        if entry.type_name == "ERR_RESOURCE_LIMIT":
            raise LimitExceeded(f"the HTML parser gave up: {entry.message}")
    if root is None:  # nothing but comments or processing instructions
        raise EmptyDocument("the page has no elements")
    return root


def _check_depth(root: lxml.etree._Element, limits: ExtractLimits) -> None:
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limits.max_depth:
            raise LimitExceeded(f"elements nest deeper than {limits.max_depth} levels")
        stack.extend((child, depth + 1) for child in element)


def _page_meta(root: lxml.etree._Element) -> dict[str, str]:
    meta: dict[str, str] = {}
    head = root.find("head")
    title = head.find("title") if head is not None else None
    if title is None:
        title = next(root.iter("title"), None)
    if title is not None:
        text = _clean_line("".join(title.itertext()))
        if text:
            meta["title"] = text
    for element in root.iter("meta"):
        name = (element.get("name") or "").strip()
        content = element.get("content")
        if name and content is not None and not meta.get(name):
            meta[name] = _clean_line(content)
    return meta


# ---------------------------------------------------------------- text flow


def _tag(element: lxml.etree._Element) -> str:
    tag = element.tag
    return tag.lower() if isinstance(tag, str) else ""  # comments/PIs/entities have callables


def _skipped(element: lxml.etree._Element, tag: str) -> bool:
    if tag in _SKIPPED or not tag:
        return True
    if element.get("hidden") is not None:
        return True
    style = element.get("style")
    return bool(style and _HIDDEN_STYLE.search(style))


def _clean_line(text: str) -> str:
    if "[bookmark" in text:
        text = _WORD_DEBRIS.sub("", text)
    text = _INVISIBLE.sub("", text)
    if "\n" in text:
        text = _SEGMENT_BREAK.sub(_segment_break, text)
    return _WHITESPACE.sub(" ", text).strip()


def _segment_break(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    before, after = text[start - 1 : start], text[end : end + 1]
    return "" if _CJK_CHAR.match(before) and _CJK_CHAR.match(after) else " "


class _Flow:
    """Collects inline text into lines; a block boundary or ``<br>`` ends the current line."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._parts: list[str] = []
        self._slots_left = MAX_GRID_SLOTS

    def spend_slots(self, count: int) -> None:
        self._slots_left -= count
        if self._slots_left < 0:
            raise LimitExceeded(f"the page's tables span more than {MAX_GRID_SLOTS} cells")

    def add(self, text: str | None) -> None:
        if text:
            self._parts.append(text)

    def break_line(self) -> None:
        if not self._parts:
            return
        line = _clean_line("".join(self._parts))
        self._parts.clear()
        if line:
            self.blocks.append(Paragraph(line))

    def add_table(self, table: Table) -> None:
        self.break_line()
        self.blocks.append(table)

    def finish(self) -> list[Block]:
        self.break_line()
        return self.blocks

    def lines(self) -> list[str]:
        """For cell text: the lines collected so far (no tables occur inside a data cell)."""
        self.break_line()
        return [b.text for b in self.blocks if isinstance(b, Paragraph)]


def _walk(container: lxml.etree._Element, flow: _Flow) -> None:
    """Walk ``container``'s content in document order, without recursion."""
    # (element, leaving): on leaving, close its block and continue with its tail text
    stack: list[tuple[lxml.etree._Element, bool]] = [(container, False)]
    while stack:
        element, leaving = stack.pop()
        tag = _tag(element)
        if leaving:
            if tag in _BLOCK:
                flow.break_line()
            if element is not container:
                flow.add(element.tail)
            continue
        if element is not container and _skipped(element, tag):
            flow.add(element.tail)
            continue
        if tag == "br":
            flow.break_line()
            flow.add(element.tail)
            continue
        if tag == "table" and element is not container:
            grid = _data_grid(element, flow)
            if grid is not None:
                caption = element.find("caption")
                if caption is not None:
                    flow.break_line()
                    flow.add(_cell_text(caption))
                    flow.break_line()
                flow.add_table(Table(rows=grid, origin="html"))
                flow.add(element.tail)
                continue
            # a layout table: fall through and walk it like any other container
        if tag in _BLOCK:
            flow.break_line()
        if tag == "pre":
            _add_preformatted(element, flow)
            stack.append((element, True))
            continue
        flow.add(element.text)
        stack.append((element, True))
        stack.extend((child, False) for child in reversed(element))


def _add_preformatted(element: lxml.etree._Element, flow: _Flow) -> None:
    for line in "".join(element.itertext()).split("\n"):
        flow.add(line)
        flow.break_line()


def _cell_text(cell: lxml.etree._Element) -> str:
    if len(cell) == 0:  # the common case: text only
        return _clean_line(cell.text) if cell.text else ""
    if _single_line(cell):  # next most common: <p><span>13</span></p>
        return _clean_line("".join(cell.itertext()))
    flow = _Flow()
    _walk(cell, flow)
    return "\n".join(flow.lines())


def _single_line(cell: lxml.etree._Element) -> bool:
    """True when the cell's content is one line: no ``br``, nothing skipped, and at most one
    block, which then holds all of the cell's text (``<td><p><span>13</span></p></td>``)."""
    block = None
    for element in cell.iterdescendants():
        tag = _tag(element)
        if tag == "br" or _skipped(element, tag):
            return False
        if tag in _BLOCK:
            if block is not None:
                return False
            block = element
    if block is None:
        return True
    outside = (cell.text or "") + (block.tail or "")
    return len(cell) == 1 and block.getparent() is cell and not outside.strip()


def _has_text(block: Block) -> bool:
    return isinstance(block, Table) and any(cell for row in block.rows for cell in row)


# ---------------------------------------------------------------- grids


def _rows(table: lxml.etree._Element) -> Iterator[list[lxml.etree._Element]]:
    """The table's own rows (never a nested table's), in order. ``td`` directly under
    ``table``/``tbody`` (libxml2 does not imply the ``tr``) counts as one row per run."""

    def rows_of(group: lxml.etree._Element, *, nested_groups: bool) -> Iterator[list[lxml.etree._Element]]:
        loose: list[lxml.etree._Element] = []
        for child in group:
            tag = _tag(child)
            if tag in _CELLS:
                loose.append(child)
                continue
            if loose:
                yield loose
                loose = []
            if tag == "tr":
                yield [cell for cell in child if _tag(cell) in _CELLS]
            elif tag in _ROW_GROUPS and nested_groups:
                yield from rows_of(child, nested_groups=False)
        if loose:
            yield loose

    yield from rows_of(table, nested_groups=True)


def _span(cell: lxml.etree._Element, name: str, cap: int) -> int:
    value = cell.get(name)
    if value is None:
        return 1
    match = _LEADING_DIGITS.match(value)
    if not match:
        return 1
    return min(max(int(match.group(1)), 1), cap)


def _data_grid(table: lxml.etree._Element, flow: _Flow) -> tuple[tuple[str, ...], ...] | None:
    """The expanded grid of a data table, or ``None`` for a layout table. Slots written are
    charged to ``flow``'s budget."""
    if next(table.iterdescendants("table"), None) is not None:
        return None
    rows = [
        [(cell, _span(cell, "rowspan", MAX_ROWSPAN), _span(cell, "colspan", MAX_COLSPAN)) for cell in row]
        for row in _rows(table)
    ]
    if not rows or max(sum(colspan for _, _, colspan in row) for row in rows) <= 1:
        return None  # a single column of cells wraps content; it does not tabulate anything

    height = len(rows)
    grid: list[list[str | None]] = [[] for _ in range(height)]  # None: a slot nothing covers yet
    for r, cells in enumerate(rows):
        line = grid[r]
        c = 0
        for cell, rowspan_attribute, colspan in cells:
            while c < len(line) and line[c] is not None:  # skip slots filled by an earlier rowspan
                c += 1
            # a rowspan never reaches past the table's last row (browsers clamp it too)
            rowspan = min(rowspan_attribute, height - r)
            flow.spend_slots(rowspan * colspan)
            text = _cell_text(cell)
            for target in grid[r : r + rowspan]:
                if len(target) < c + colspan:
                    target.extend([None] * (c + colspan - len(target)))
                for slot in range(c, c + colspan):
                    if target[slot] is None:
                        target[slot] = text
            c += colspan
    width = max(len(line) for line in grid)
    flow.spend_slots(height * width)  # ragged rows pad out to the widest
    padded = (line + [None] * (width - len(line)) for line in grid)
    rows_out = (tuple("" if slot is None else slot for slot in line) for line in padded)
    kept = tuple(row for row in rows_out if any(row))  # spacer rows carry nothing
    return kept or None
