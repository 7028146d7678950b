"""Legacy Word 97–2003 ``.doc`` and Kingsoft WPS ``.wps`` → paragraphs and cell grids.

Both are OLE compound files holding a ``WordDocument`` stream (Kingsoft writes MS Word
binary with its own extensions), so one reader serves both, with no office suite
installed: olefile opens the container and this module reads just enough of
[MS-DOC] to get the main text and its tables:

1. the FIB (file information block) at the start of ``WordDocument``: where the main
   text ends (``ccpText``) and where the piece table (CLX) and the paragraph
   property index (PlcBtePapx) sit in the ``0Table``/``1Table`` stream;
2. the piece table: which byte ranges of ``WordDocument`` hold which characters
   (8-bit cp1252 or UTF-16LE pieces);
3. paragraph properties (PAPX in 512-byte FKP pages): whether a paragraph is inside a
   table (``sprmPFInTable``/``sprmPItap``), whether its mark ends a row
   (``sprmPFTtp``), and for row ends the row's cell boundaries and vertical merges
   (``sprmTDefTable``, ``sprmTVertMerge``).

Cells end with ``\\x07``; a row ends with one more ``\\x07`` whose paragraph carries the
row properties. Cell boundaries of all rows together give the table's grid columns, so
a wide (merged) cell repeats its text across the columns it covers, and a vertically
continued cell repeats the text above it — the same grid HTML and DOCX give. Field
instructions (``\\x13…\\x14``) are dropped, field results kept.

When the paragraph properties cannot be read, the text still comes out, table cells
separated by tabs, and the document is marked ``flat``.
"""

from __future__ import annotations

import re
import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from io import BytesIO

import olefile

from shared.errors import CorruptDocument, EmptyDocument, LimitExceeded, UnsupportedMediaType
from shared.extract.blocks import Block, Document, Paragraph, Table
from shared.extract.limits import ExtractLimits

MEDIA_TYPE = "application/msword"
FIB_MAGIC = 0xA5EC
FKP_SIZE = 512
# twips: cell boundaries closer than this are the same grid line (Word snaps to 1/20 pt)
BOUNDARY_TOLERANCE = 30
MAX_COLUMNS = 200
MAX_PIECES = 100_000

# FibRgFcLcb97 pair indices
_FC_PLCF_BTE_PAPX = 13
_FC_CLX = 33

_SPRM_P_F_IN_TABLE = 0x2416
_SPRM_P_F_TTP = 0x2417
_SPRM_P_ITAP = 0x6649
_SPRM_P_F_INNER_TTP = 0x244C
_SPRM_P_HUGE_PAPX = 0x6646
_SPRM_T_DEF_TABLE = 0xD608
_SPRM_T_VERT_MERGE = 0xD62B
_SPRM_P_CHG_TABS = 0xC615
_OPERAND_SIZE = {0: 1, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2, 7: 3}

# characters that are structure or placeholders, not text
_DROPPED = dict.fromkeys(map(ord, "\x01\x02\x03\x04\x05\x06\x08\x1f\ufeff"), None) | {0x1E: "-", 0xA0: " "}
_WHITESPACE_RUN = re.compile(r"[ \u3000]{2,}")


@dataclass(slots=True)
class _Piece:
    cp_start: int
    cp_end: int
    fc: int  # byte offset of the first character in WordDocument
    compressed: bool  # 8-bit cp1252 rather than UTF-16LE


@dataclass(slots=True)
class _ParaProps:
    in_table: bool = False
    row_end: bool = False
    depth: int = 0
    # from sprmTDefTable on a row end: cell boundaries (twips) and vertical-merge flags
    boundaries: list[int] = field(default_factory=list)
    vertical: list[int] = field(default_factory=list)
    horizontal: list[int] = field(default_factory=list)


def extract_doc(data: bytes, *, limits: ExtractLimits, content_type: str | None = None) -> Document:
    """Read a Word 97–2003 or Kingsoft WPS document into blocks."""
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"DOC is {len(data)} bytes, over the {limits.max_bytes}-byte cap")
    try:
        ole = olefile.OleFileIO(BytesIO(data))
    except Exception as exc:
        raise CorruptDocument(f"not a readable OLE compound file ({exc})") from None
    try:
        if not ole.exists("WordDocument"):
            raise UnsupportedMediaType("an OLE file without a WordDocument stream (not Word or WPS)")
        word = _stream(ole, "WordDocument", limits)
        fib = _Fib.read(word)
        table = _stream(ole, fib.table_stream, limits)
        data_stream = _stream(ole, "Data", limits) if ole.exists("Data") else b""
        meta = _summary(ole)
    finally:
        ole.close()

    pieces = _pieces(table, fib)
    chars, offsets = _main_text(word, pieces, fib.ccp_text)
    warnings: list[str] = []
    try:
        papx = _PapxIndex(word, table, data_stream, fib)
    except (struct.error, IndexError, ValueError) as exc:
        papx = None
        warnings.append(f"doc: paragraph properties unreadable ({exc}); table cells are tab-separated")
    blocks = _Assembler(papx).run(chars, offsets)
    if not blocks:
        raise EmptyDocument("the DOC has no text")
    doc = Document(blocks=blocks, media_type=MEDIA_TYPE, meta=meta, warnings=warnings)
    doc.flat = papx is None and "\x07" in chars
    return doc


def _stream(ole: olefile.OleFileIO[str], name: str, limits: ExtractLimits) -> bytes:
    if not ole.exists(name):
        raise CorruptDocument(f"the DOC has no {name} stream")
    size = ole.get_size(name)
    if size > limits.max_decompressed_bytes:
        raise LimitExceeded(
            f"the {name} stream is {size} bytes, over the {limits.max_decompressed_bytes}-byte cap"
        )
    try:
        return bytes(ole.openstream(name).read(size))
    except Exception as exc:
        raise CorruptDocument(f"the {name} stream cannot be read ({exc})") from None


def _summary(ole: olefile.OleFileIO[str]) -> dict[str, str]:
    meta: dict[str, str] = {}
    try:
        props = ole.get_metadata()
    except Exception:
        return meta
    codepage = getattr(props, "codepage", None) or 936
    for attr, key in (("title", "title"), ("author", "author"), ("subject", "subject")):
        value = getattr(props, attr, None)
        if isinstance(value, bytes):
            try:
                value = value.decode(f"cp{codepage}" if codepage != 65001 else "utf-8")
            except (LookupError, UnicodeDecodeError):
                value = None
        if isinstance(value, str) and value.strip("\x00 "):
            meta[key] = value.strip("\x00 ")
    created = getattr(props, "create_time", None)
    if created is not None and hasattr(created, "date") and created.year >= 1980:  # 1601 = FILETIME zero
        meta["created"] = created.date().isoformat()
    return meta


# ---------------------------------------------------------------- FIB and piece table


@dataclass(frozen=True, slots=True)
class _Fib:
    table_stream: str
    ccp_text: int
    fc_clx: int
    lcb_clx: int
    fc_papx: int
    lcb_papx: int

    @classmethod
    def read(cls, word: bytes) -> _Fib:
        try:
            ident, _nfib = struct.unpack_from("<HH", word, 0)
            flags = struct.unpack_from("<H", word, 0x0A)[0]
            if ident != FIB_MAGIC:
                raise CorruptDocument("the WordDocument stream does not start with a Word FIB")
            if flags & 0x0100:
                raise UnsupportedMediaType("the DOC is encrypted (password-protected)")
            csw = struct.unpack_from("<H", word, 32)[0]
            at = 34 + csw * 2
            cslw = struct.unpack_from("<H", word, at)[0]
            longs = struct.unpack_from(f"<{cslw}i", word, at + 2)
            at += 2 + cslw * 4
            pairs = struct.unpack_from("<H", word, at)[0]
            fclcb = struct.unpack_from(f"<{pairs * 2}I", word, at + 2)
        except struct.error as exc:
            raise CorruptDocument(f"the Word FIB is truncated ({exc})") from None
        if cslw < 4 or pairs <= _FC_CLX:
            raise CorruptDocument("the Word FIB is too short (a Word 6/95 file?)")
        return cls(
            table_stream="1Table" if flags & 0x0200 else "0Table",
            ccp_text=max(longs[3], 0),
            fc_clx=fclcb[_FC_CLX * 2],
            lcb_clx=fclcb[_FC_CLX * 2 + 1],
            fc_papx=fclcb[_FC_PLCF_BTE_PAPX * 2],
            lcb_papx=fclcb[_FC_PLCF_BTE_PAPX * 2 + 1],
        )


def _pieces(table: bytes, fib: _Fib) -> list[_Piece]:
    clx = table[fib.fc_clx : fib.fc_clx + fib.lcb_clx]
    at = 0
    try:
        while at < len(clx) and clx[at] == 0x01:  # Prc: property modifiers we do not need
            at += 3 + struct.unpack_from("<h", clx, at + 1)[0]
        if at >= len(clx) or clx[at] != 0x02:
            raise CorruptDocument("the DOC piece table is missing")
        size = struct.unpack_from("<I", clx, at + 1)[0]
        plc = clx[at + 5 : at + 5 + size]
        count = (len(plc) - 4) // 12
        if count <= 0 or count > MAX_PIECES:
            raise CorruptDocument("the DOC piece table is empty or implausible")
        cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
        pieces = []
        for i in range(count):
            fc_raw = struct.unpack_from("<I", plc, 4 * (count + 1) + 8 * i + 2)[0]
            compressed = bool(fc_raw & 0x40000000)
            fc = (fc_raw & 0x3FFFFFFF) // 2 if compressed else fc_raw & 0x3FFFFFFF
            if cps[i + 1] > cps[i]:
                pieces.append(_Piece(cps[i], cps[i + 1], fc, compressed))
        return pieces
    except struct.error as exc:
        raise CorruptDocument(f"the DOC piece table is truncated ({exc})") from None


def _main_text(word: bytes, pieces: list[_Piece], ccp_text: int) -> tuple[str, list[int]]:
    """The main document's characters, each with its byte offset in WordDocument (which
    is how paragraph properties are indexed)."""
    chars: list[str] = []
    offsets: list[int] = []
    for piece in sorted(pieces, key=lambda p: p.cp_start):
        if piece.cp_start >= ccp_text:
            break
        count = min(piece.cp_end, ccp_text) - piece.cp_start
        if piece.compressed:
            raw = word[piece.fc : piece.fc + count]
            text = raw.decode("cp1252", errors="replace")
            step = 1
        else:
            raw = word[piece.fc : piece.fc + 2 * count]
            text = raw.decode("utf-16-le", errors="replace")
            step = 2
        if len(text) < count:
            raise CorruptDocument("a DOC text piece points past the end of the WordDocument stream")
        chars.append(text)
        offsets.extend(range(piece.fc, piece.fc + step * count, step))
    return "".join(chars), offsets


# ---------------------------------------------------------------- paragraph properties


class _PapxIndex:
    """Paragraph properties by the byte offset of a paragraph mark."""

    def __init__(self, word: bytes, table: bytes, data: bytes, fib: _Fib) -> None:
        plc = table[fib.fc_papx : fib.fc_papx + fib.lcb_papx]
        count = (len(plc) - 4) // 8
        if count <= 0:
            raise ValueError("no PlcBtePapx")
        pages = struct.unpack_from(f"<{count}I", plc, 4 * (count + 1))
        # (fc_start, fc_end, grpprl) runs from every FKP page
        self._runs: list[tuple[int, int, bytes]] = []
        for pn in pages:
            page = word[(pn & 0x3FFFFF) * FKP_SIZE : (pn & 0x3FFFFF) * FKP_SIZE + FKP_SIZE]
            if len(page) < FKP_SIZE:
                raise ValueError("an FKP page lies past the end of the stream")
            crun = page[FKP_SIZE - 1]
            fcs = struct.unpack_from(f"<{crun + 1}I", page, 0)
            for i in range(crun):
                b_offset = page[4 * (crun + 1) + 13 * i]
                grpprl = b""
                if b_offset:
                    at = b_offset * 2
                    cb = page[at]
                    if cb == 0:
                        size = 2 * page[at + 1]
                        grpprl = page[at + 2 : at + 2 + size]
                    else:
                        grpprl = page[at + 1 : at + 1 + 2 * cb - 1]
                    grpprl = grpprl[2:]  # the style index (istd) comes first
                self._runs.append((fcs[i], fcs[i + 1], grpprl))
        self._runs.sort(key=lambda run: run[0])
        self._starts = [run[0] for run in self._runs]
        self._data = data
        self._cache: dict[int, _ParaProps] = {}

    def at(self, fc: int) -> _ParaProps:
        index = bisect_right(self._starts, fc) - 1
        if index < 0 or not (self._runs[index][0] <= fc < self._runs[index][1]):
            return _ParaProps()
        if index not in self._cache:
            self._cache[index] = self._parse(self._runs[index][2])
        return self._cache[index]

    def _parse(self, grpprl: bytes) -> _ParaProps:
        props = _ParaProps()
        for sprm, operand in _sprms(grpprl):
            if sprm == _SPRM_P_HUGE_PAPX and len(operand) == 4:
                at = struct.unpack("<I", operand)[0]
                if at + 2 <= len(self._data):
                    size = struct.unpack_from("<H", self._data, at)[0]
                    for huge_sprm, huge_operand in _sprms(self._data[at + 2 : at + 2 + size]):
                        _apply(props, huge_sprm, huge_operand)
                continue
            _apply(props, sprm, operand)
        return props


def _sprms(grpprl: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    at = 0
    while at + 2 <= len(grpprl):
        sprm = struct.unpack_from("<H", grpprl, at)[0]
        at += 2
        spra = sprm >> 13
        if spra == 6:
            if sprm == _SPRM_T_DEF_TABLE:
                if at + 2 > len(grpprl):
                    break
                size = struct.unpack_from("<H", grpprl, at)[0] - 1
                at += 2
            elif sprm == _SPRM_P_CHG_TABS and at < len(grpprl) and grpprl[at] == 255:
                break  # the rare long form; nothing after it matters to us
            else:
                if at >= len(grpprl):
                    break
                size = grpprl[at]
                at += 1
        else:
            size = _OPERAND_SIZE[spra]
        out.append((sprm, grpprl[at : at + max(size, 0)]))
        at += max(size, 0)
    return out


def _apply(props: _ParaProps, sprm: int, operand: bytes) -> None:
    if sprm == _SPRM_P_F_IN_TABLE and operand:
        props.in_table = operand[0] != 0
        props.depth = max(props.depth, 1 if props.in_table else 0)
    elif sprm == _SPRM_P_ITAP and len(operand) == 4:
        props.depth = struct.unpack("<i", operand)[0]
        props.in_table = props.in_table or props.depth > 0
    elif sprm == _SPRM_P_F_TTP and operand:
        props.row_end = operand[0] != 0
    elif sprm == _SPRM_P_F_INNER_TTP and operand:
        props.row_end = props.row_end or False  # inner rows stay inside their outer cell
    elif sprm == _SPRM_T_DEF_TABLE and operand:
        columns = operand[0]
        if columns == 0 or columns > MAX_COLUMNS or len(operand) < 1 + 2 * (columns + 1):
            return
        props.boundaries = list(struct.unpack_from(f"<{columns + 1}h", operand, 1))
        cells = operand[1 + 2 * (columns + 1) :]
        flags = [struct.unpack_from("<H", cells, 20 * i)[0] for i in range(min(columns, len(cells) // 20))]
        props.horizontal = [f & 0x3 for f in flags]
        props.vertical = [(f >> 5) & 0x3 for f in flags]
    elif sprm == _SPRM_T_VERT_MERGE and len(operand) >= 2:
        index, flag = operand[0], operand[1]
        while len(props.vertical) <= index:
            props.vertical.append(0)
        props.vertical[index] = flag


# ---------------------------------------------------------------- text → blocks


def _clean(text: str) -> str:
    return _WHITESPACE_RUN.sub(" ", text.translate(_DROPPED)).strip()


def _strip_fields(text: str) -> str:
    """Drop field instructions (``\\x13 instr \\x14 result \\x15`` keeps ``result``)."""
    if "\x13" not in text:
        return text
    out: list[str] = []
    stack: list[bool] = []  # per open field: are we past its separator (showing the result)?
    for char in text:
        if char == "\x13":
            stack.append(False)
        elif char == "\x14" and stack:
            stack[-1] = True
        elif char == "\x15" and stack:
            stack.pop()
        elif all(stack):
            out.append(char)
    return "".join(out)


@dataclass(slots=True)
class _Row:
    cells: list[str]
    props: _ParaProps


class _Assembler:
    def __init__(self, papx: _PapxIndex | None) -> None:
        self.papx = papx
        self.blocks: list[Block] = []
        self.rows: list[_Row] = []
        self.cells: list[str] = []
        self.cell: list[str] = []

    def run(self, chars: str, offsets: list[int]) -> list[Block]:
        start = 0
        for i, char in enumerate(chars):
            if char in "\r\x07\x0c\x0e":
                self.paragraph(chars[start:i], char, offsets[i])
                start = i + 1
        if start < len(chars):
            self.paragraph(chars[start:], "\r", offsets[-1] if offsets else 0)
        self.end_table()
        return self.blocks

    def paragraph(self, raw: str, mark: str, fc: int) -> None:
        text = _strip_fields(raw)
        props = self.papx.at(fc) if self.papx is not None else _ParaProps(in_table=mark == "\x07")
        if not props.in_table:
            self.end_table()
            for line in text.split("\x0b"):
                if cleaned := _clean(line):
                    self.blocks.append(Paragraph(cleaned))
            return
        if mark != "\x07":  # a paragraph inside a cell (or an inner table's cell/row)
            self.cell.append(text)
            return
        if props.row_end and props.depth <= 1:
            if self.cell and any(part.strip() for part in self.cell):
                self.end_cell(text)
            self.rows.append(_Row(self.cells, props))
            self.cells = []
            self.cell = []
            return
        self.end_cell(text)

    def end_cell(self, text: str) -> None:
        self.cell.append(text)
        lines = [_clean(line) for part in self.cell for line in part.split("\x0b")]
        self.cells.append("\n".join(line for line in lines if line))
        self.cell = []

    def end_table(self) -> None:
        if self.cells:  # cells after the last row mark (no row properties found)
            self.rows.append(_Row(self.cells, _ParaProps()))
            self.cells = []
        if not self.rows:
            return
        if self.papx is None:
            for row in self.rows:
                self.blocks.append(Paragraph("\t".join(row.cells)))
        else:
            grid = _grid(self.rows)
            if grid:
                self.blocks.append(Table(rows=grid, origin="doc"))
        self.rows = []


def _grid(rows: list[_Row]) -> tuple[tuple[str, ...], ...]:
    """Rows of cells with their boundaries → one grid over all boundaries of the table."""
    edges = sorted({x for row in rows for x in row.props.boundaries})
    columns: list[int] = []
    for x in edges:
        if not columns or x - columns[-1] > BOUNDARY_TOLERANCE:
            columns.append(x)
    grid: list[list[str]] = []
    for row in rows:
        bounds = row.props.boundaries
        if len(bounds) < len(row.cells) + 1 or len(columns) < 2:
            out = list(row.cells)  # no geometry: one column per cell
        else:
            width = len(columns) - 1
            out = [""] * width
            above = grid[-1] if grid else []
            for i, own_text in enumerate(row.cells):
                text = own_text
                c0 = _column(columns, bounds[i])
                c1 = max(_column(columns, bounds[i + 1]), c0 + 1)
                vertical = row.props.vertical[i] if i < len(row.props.vertical) else 0
                horizontal = row.props.horizontal[i] if i < len(row.props.horizontal) else 0
                if vertical == 1 and c0 < len(above):
                    text = above[c0]  # continues the merged cell above
                elif horizontal == 1 and c0 > 0:
                    text = out[c0 - 1]  # legacy horizontal merge: continues the cell on its left
                for c in range(c0, min(c1, width)):
                    out[c] = text
        grid.append(out)
    width = max((len(r) for r in grid), default=0)
    rows_out = [tuple(r + [""] * (width - len(r))) for r in grid]
    return tuple(r for r in rows_out if any(cell.strip() for cell in r))


def _column(columns: list[int], x: int) -> int:
    return min(range(len(columns)), key=lambda i: abs(columns[i] - x))
