"""Reading one table cell's text as a number.

Blank is not zero: ``""``, ``/``, ``-``, ``—``, ``——`` are blanks (``None``); ``无``
is a printed zero. Full-width digits and spaces (``１２３``, ``1 234``, ``　0``) are
read, so are a sign on 本年增/减 (``-3``, ``－3``) and units: ``570.6387万元`` is
570.6387, and for amount cells ``251000元`` is converted to 万元 (25.1). Counts come
back as ``int``; amounts may be ``float``. Anything else is unreadable: ``None``
with a ``problem`` the parser turns into an uncertain cell — so is a number with more
than :data:`MAX_INTEGER_DIGITS` digits before the point.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

Number = int | float

YUAN_PER_WAN = Decimal(10000)
# No real cell comes near this (a province's yearly count has 6 digits, 一千亿元 in 元 has 12),
# while 400 nines overflow float() in the rules and 5,000 digits exceed Python's int→str limit
# when the record is printed: such a run of digits is damage (merged cells, OCR), not a value.
MAX_INTEGER_DIGITS = 12

# printed blanks: the filer left the cell empty (or wrote a dash for "not applicable")
BLANK_TOKENS = frozenset(
    {"", "/", "\\", "-", "--", "—", "——", "–", "―", "―――", "_", "__", "n/a", "N/A", "/ "}
)
# printed zeros
ZERO_TOKENS = frozenset({"无", "零", "没有", "0件", "〇"})
# count units that may trail a number; they carry no meaning for the record
_COUNT_UNITS = ("件", "项", "个", "条", "次", "人", "家", "份", "宗", "起")
_NOISE = re.compile(r"\[bookmark:[^\]]*\]|\[[a-z]+:[^\]]*\]", re.I)
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200b\u3000\ufeff]+")
_NUMBER = re.compile(r"^([+-]?)(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)$")
_DASHES = str.maketrans({"－": "-", "−": "-", "﹣": "-", "‐": "-", "‑": "-", "，": ","})


@dataclass(frozen=True, slots=True)
class CellReading:
    value: Number | None
    unit: str | None = None  # "元" | "万元" when printed in the cell
    blank: bool = False  # printed blank (None on purpose), as opposed to unreadable
    problem: str | None = None  # why the text could not be read as a number

    @property
    def readable(self) -> bool:
        return self.problem is None


@lru_cache(maxsize=16384)
def clean_cell_text(text: str) -> str:
    """The cell text without extraction noise (``[bookmark: _GoBack]``) and spacing."""
    s = unicodedata.normalize("NFKC", _NOISE.sub("", text or ""))
    return _SPACES.sub("", s).translate(_DASHES)


def integer_digits(number: str) -> int:
    """Significant digits before the decimal point of ``1,234.5``-style text (leading zeros aside)."""
    whole = number.split(".", 1)[0].replace(",", "").lstrip("0")
    return len(whole)


def _to_number(digits: str, sign: str) -> Decimal:
    value = Decimal(digits.replace(",", ""))
    return -value if sign == "-" else value


def _as_python(value: Decimal) -> Number:
    if value == value.to_integral_value():
        return int(value)
    return float(value)


@lru_cache(maxsize=16384)
def read_cell(text: str, amount: bool = False, default_unit: str | None = None) -> CellReading:
    """Read one cell. ``amount``: the cell is an amount in 万元 (元 is converted);
    ``default_unit``: the unit the column header declares for cells printed bare."""
    s = clean_cell_text(text)
    if s in BLANK_TOKENS or not s.strip("/-—–―_ "):
        return CellReading(None, blank=True)
    if s in ZERO_TOKENS:
        return CellReading(0)
    unit: str | None = None
    if s.endswith("万元"):
        s, unit = s[:-2], "万元"
    elif s.endswith("元"):
        s, unit = s[:-1], "元"
    else:
        for suffix in _COUNT_UNITS:
            if s.endswith(suffix) and len(s) > len(suffix):
                s = s[: -len(suffix)]
                break
    m = _NUMBER.match(s)
    if not m:
        return CellReading(None, unit=unit, problem=f"unreadable cell text {text.strip()!r}")
    digits = integer_digits(m.group(2))
    if digits > MAX_INTEGER_DIGITS:
        head = text.strip()[:20]  # the text itself may be huge: quote only its start
        problem = f"a number of {digits} digits (more than {MAX_INTEGER_DIGITS}) in cell text {head!r}…"
        return CellReading(None, unit=unit, problem=problem)
    try:
        value = _to_number(m.group(2), m.group(1))
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        return CellReading(None, unit=unit, problem=f"unreadable cell text {text.strip()!r}")
    effective_unit = unit or default_unit
    if amount and effective_unit == "元":
        value = value / YUAN_PER_WAN
    elif unit == "元" and not amount:
        return CellReading(None, unit=unit, problem=f"an amount in 元 in a count cell: {text.strip()!r}")
    return CellReading(_as_python(value), unit=unit)


def read_number(text: str, *, amount: bool = False) -> tuple[Number | None, str | None]:
    """``(value, unit)``: the value (``None`` for blank or unreadable) and the printed unit."""
    reading = read_cell(text, amount=amount)
    return reading.value, reading.unit


@lru_cache(maxsize=16384)
def looks_like_value(text: str) -> bool:
    """True for a cell that holds a number, a printed blank or a printed zero: not a label."""
    s = clean_cell_text(text)
    if s in BLANK_TOKENS or s in ZERO_TOKENS or not s.strip("/-—–―_ "):
        return True
    for suffix in ("万元", "元", *_COUNT_UNITS):
        if s.endswith(suffix) and len(s) > len(suffix):
            s = s[: -len(suffix)]
            break
    return bool(_NUMBER.match(s))


@lru_cache(maxsize=16384)
def is_blank_text(text: str) -> bool:
    return not clean_cell_text(text)
