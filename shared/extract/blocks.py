"""The intermediate every carrier produces: an ordered list of blocks.

A carrier extractor (HTML, text, PDF, DOCX, DOC, OCR) turns raw bytes into a
:class:`Document`; the parser only ever sees documents, so a new carrier is a
new extractor and nothing else.

- :class:`Paragraph` — one line or paragraph of running text, in reading order.
- :class:`Table` — a rectangular grid of cell strings (merged cells repeated
  into every slot they span, blanks as ``""``), in reading order among the
  paragraphs.
- ``Document.meta`` — page metadata that is not body text: ``<title>``,
  ``<meta name=ArticleTitle|PubDate|SiteName|SiteIDCode|...>``, a crawler's
  header block (标题/发布时间), PDF/DOCX document properties.
- ``Document.flat`` — set when the carrier lost the table cell boundaries
  (someone else's extractor ran the cells together); the parser then recovers
  cells with the form's arithmetic instead of reading grids.
- ``Document.ocr`` — cells were read by OCR; the parser marks them uncertain.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    rows: tuple[tuple[str, ...], ...]
    # Where the grid came from, for confidence and messages: "html", "tabs", "pipes",
    # "lines", "markdown", "pdf-ruled", "pdf-words", "docx", "doc", "ocr".
    origin: str = ""

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)


Block = Paragraph | Table


@dataclass(slots=True)
class Document:
    blocks: list[Block]
    media_type: str
    meta: dict[str, str] = field(default_factory=dict)
    flat: bool = False
    ocr: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    def text(self) -> str:
        """All paragraph text, one paragraph a line (tables left out)."""
        return "\n".join(b.text for b in self.blocks if isinstance(b, Paragraph))
