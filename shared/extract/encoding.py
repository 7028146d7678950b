"""Bytes → text for the text carriers (HTML, plain text), in the order that got 13/13 right.

The order (research/extraction.md §5):

1. a byte-order mark, when there is one;
2. strict UTF-8 — CJK text in GBK practically never validates as UTF-8, so this alone fixes
   "declared GBK, actually UTF-8";
3. the declared charset: the HTTP header's, then ``<meta charset>`` / ``http-equiv`` /
   ``<?xml encoding?>`` in the first bytes, with the GB2312 family widened to GB18030
   (Python's strict ``gb2312`` codec fails on names such as 镕 and 喆);
4. GB18030;
5. damaged or mixed bytes: decode as UTF-8 and as GB18030 with ``errors="replace"`` and keep
   the one with fewer U+FFFD;
6. charset-normalizer, only for text that is not Chinese at all (its GB2312 answer widened too).

Two guards keep non-Chinese bytes out of steps 3–4. A declared single-byte Western charset
(ISO-8859-1 is many servers' default header) decodes any bytes, so it yields to GB18030 when the
bytes read as plausible Chinese. And an undeclared GB18030 decode is accepted only when it reads
as plausible Chinese: mis-decoded Latin-1 lands in the GBK extension area, outside GB2312.

Pure: no I/O, no logging; the caller records the encoding it gets back.
"""

from __future__ import annotations

import codecs
import re

# labels that are GB2312 or a subset of GB18030 in practice
_GB_FAMILY = frozenset(
    {
        "gb2312",
        "gb-2312",
        "gb-2312-80",
        "gb2312-80",
        "gb2312-1980",
        "csgb2312",
        "euc-cn",
        "euccn",
        "x-euc-cn",
        "chinese",
        "iso-ir-58",
        "gbk",
        "x-gbk",
        "cp936",
        "ms936",
        "windows-936",
        "gb18030",
    }
)
# (Python codec names) decoders that accept nearly any byte string, so "it decoded" proves nothing
_SINGLE_BYTE_WESTERN = re.compile(r"^(iso8859-\d+|cp125\d|mac-[a-z]+|ascii)$")
# a UTF-16/32 declaration without a BOM is a lie about 8-bit bytes (HTML5 treats it as UTF-8)
_WIDE_UNICODE = re.compile(r"^(utf-?(16|32)|ucs-?(2|4)|unicode)")

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts with FF FE too
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
# <meta charset="x">, <meta http-equiv=Content-Type content="text/html; charset=x">
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_XML_DECL_ENCODING = re.compile(rb"""^\s*<\?xml\b[^>]*?encoding\s*=\s*["']\s*([A-Za-z0-9_.:\-]+)""", re.I)
# how far into the bytes a declaration is looked for (Word exports put long <style>s first)
_DECLARATION_WINDOW = 8192

# below this share of GB2312 characters among the non-ASCII ones, a GB18030 decode is noise
# (real Chinese prose is >99% GB2312; UTF-8 bytes read as GB18030 come out about half)
_PLAUSIBLE_CHINESE_SHARE = 0.8
_PLAUSIBILITY_SAMPLE = 20_000
_ASCII_OR_REPLACEMENT = re.compile("[\x00-\x7f\ufffd]+")
# GB18030 maps stray byte pairs into the private use area; real text has none there
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_CJK_IDEOGRAPH = re.compile("[\u3400-\u9fff]")
# outside GB2312 but reachable only through GB18030's four-byte sequences, which noise rarely forms
_EXTENSION_IDEOGRAPHS = re.compile("[\u3400-\u4dbf\U00020000-\U0003ffff]")


def decode_bytes(data: bytes, *, content_type: str | None = None) -> tuple[str, str]:
    """Decode ``data``; return ``(text, encoding used)``. The BOM is not part of the text.

    ``content_type`` is the HTTP ``Content-Type`` header, whose charset (if any) is the first
    declaration tried. Never raises for any byte string: damaged bytes come back with U+FFFD.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(name, errors="replace"), name

    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass

    for declared in _declared_charsets(data, content_type):
        text = _decode_declared(data, declared)
        if text is not None:
            return text, declared

    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        if _plausible_chinese(text):
            return text, "gb18030"

    return _decode_damaged(data)


def normalize_charset(label: str) -> str | None:
    """A charset label as found in a header or meta tag → the Python codec to use, or ``None``.

    The GB2312 family becomes ``gb18030``; unknown labels and BOM-less UTF-16/32 claims are
    ``None`` (they cannot be trusted for 8-bit bytes)."""
    name = label.strip().strip("\"'").lower().replace("_", "-")
    if not name:
        return None
    if name in _GB_FAMILY:
        return "gb18030"
    if _WIDE_UNICODE.match(name):
        return None
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    if codec in ("gb2312", "gbk", "gb18030", "hz"):
        return "gb18030"
    return codec


def _declared_charsets(data: bytes, content_type: str | None) -> list[str]:
    """Declarations in order of authority: HTTP header, then meta, then the XML declaration."""
    labels: list[str] = []
    if content_type:
        match = _HEADER_CHARSET.search(content_type)
        if match:
            labels.append(match.group(1))
    head = data[:_DECLARATION_WINDOW]
    meta = _META_CHARSET.search(head)
    if meta:
        labels.append(meta.group(1).decode("ascii", errors="ignore"))
    xml_decl = _XML_DECL_ENCODING.match(head)
    if xml_decl:
        labels.append(xml_decl.group(1).decode("ascii", errors="ignore"))
    names: list[str] = []
    for label in labels:
        name = normalize_charset(label)
        # UTF-8 was tried strictly already and failed: a UTF-8 claim is wrong about these bytes
        if name and name != "utf-8" and name not in names:
            names.append(name)
    return names


def _decode_declared(data: bytes, name: str) -> str | None:
    try:
        text = data.decode(name)
    except (UnicodeDecodeError, LookupError):
        return None
    if name == "gb18030":
        # a page that is mostly UTF-8 but carries a GBK footer can still read as GB18030
        return text if _plausible_chinese(text) else None
    if _SINGLE_BYTE_WESTERN.match(name):
        # e.g. a Tomcat default "charset=ISO-8859-1" on a GBK page: prefer GB18030 when it fits
        try:
            chinese = data.decode("gb18030")
        except UnicodeDecodeError:
            return text
        if _plausible_chinese(chinese):  # non-ASCII for sure: strict UTF-8 failed
            return None
    return text


def _decode_damaged(data: bytes) -> tuple[str, str]:
    candidates = [(data.decode(name, errors="replace"), name) for name in ("utf-8", "gb18030")]
    # GB18030 reads most UTF-8 bytes without a single U+FFFD, as noise: the count alone misleads
    chinese = [(text, name) for text, name in candidates if _has_cjk(text) and _plausible_chinese(text)]
    if chinese:
        return min(chinese, key=lambda pair: pair[0].count("\ufffd"))
    guess = _charset_normalizer_guess(data)
    if guess is not None:
        return data.decode(guess, errors="replace"), guess
    return min(candidates, key=lambda pair: pair[0].count("\ufffd"))


def _charset_normalizer_guess(data: bytes) -> str | None:
    # imported here: 28 ms of import time that only non-Chinese oddities pay for
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or not best.encoding:
        return None
    return normalize_charset(best.encoding)


def _has_cjk(text: str) -> bool:
    return _CJK_IDEOGRAPH.search(text, 0, _PLAUSIBILITY_SAMPLE) is not None


def _plausible_chinese(text: str) -> bool:
    """Real Chinese text is nearly all GB2312; bytes of another language read as GB18030 are not."""
    sample = text[:_PLAUSIBILITY_SAMPLE]
    if sample.isascii():
        return True
    non_ascii = _ASCII_OR_REPLACEMENT.sub("", sample)
    if not non_ascii:
        return True
    if _PRIVATE_USE.search(non_ascii):
        return False
    # every GB2312 character is two bytes; what does not fit is dropped
    in_gb2312 = len(non_ascii.encode("gb2312", errors="ignore")) // 2
    extensions = len(_EXTENSION_IDEOGRAPHS.findall(non_ascii))
    # a short title may be mostly rare names (朱镕基): below 20 characters, half is enough
    share = _PLAUSIBLE_CHINESE_SHARE if len(non_ascii) >= 20 else 0.5
    return in_gb2312 + extensions >= share * len(non_ascii)
