"""decode_bytes: the decode order of research/extraction.md §5, case by case."""

from __future__ import annotations

import codecs
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import UnsupportedMediaType
from shared.extract import extract_document
from shared.extract.encoding import decode_bytes, normalize_charset

BODY = "<p>本年新收政府信息公开申请数量</p><p>行政复议结果维持</p>"
NAMES = "国务院总理朱镕基、张喆、王玥、李堃"  # 镕 喆 玥 堃 are outside GB2312


def page(charset: str | None, body: str = BODY, title: str = "某某镇2020年政府信息公开工作年度报告") -> str:
    meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">' if charset else ""
    return f"<html><head>{meta}<title>{title}</title></head><body>{body}</body></html>"


def test_plain_utf8_page():
    text, encoding = decode_bytes(page("utf-8").encode("utf-8"))
    assert (text, encoding) == (page("utf-8"), "utf-8")


def test_gbk_page_declaring_gb2312_is_read_as_gb18030():
    source = page("gb2312")
    assert decode_bytes(source.encode("gbk")) == (source, "gb18030")


def test_utf8_page_declaring_gb2312_is_read_as_utf8():
    source = page("gb2312")
    assert decode_bytes(source.encode("utf-8")) == (source, "utf-8")


def test_gbk_page_declaring_utf8_is_read_as_gb18030():
    source = page("utf-8")
    text, encoding = decode_bytes(source.encode("gbk"))
    assert text == source
    assert encoding == "gb18030"


def test_bom_wins_over_a_wrong_declaration():
    source = page("gbk")
    text, encoding = decode_bytes(codecs.BOM_UTF8 + source.encode("utf-8"))
    assert (text, encoding) == (source, "utf-8")  # the BOM is not part of the text


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec):
    source = page(None)
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    assert decode_bytes(bom + source.encode(codec)) == (source, codec)


def test_names_outside_gb2312_declared_gb2312_survive():
    # Python's strict gb2312 codec fails on 镕; the declaration is widened to GB18030
    source = page("gb2312", body=f"<p>{NAMES}</p>")
    with pytest.raises(UnicodeDecodeError):
        source.encode("gbk").decode("gb2312")
    assert decode_bytes(source.encode("gbk")) == (source, "gb18030")


def test_http_header_charset_comes_before_the_meta():
    # the header is right (GBK), the meta is wrong (big5): the header decides
    source = page("big5")
    text, encoding = decode_bytes(source.encode("gbk"), content_type="text/html; charset=GBK")
    assert (text, encoding) == (source, "gb18030")


def test_meta_decides_when_the_header_is_wrong():
    # header claims big5, bytes are GBK and the meta says gb2312: big5 fails strictly, meta wins
    source = page("gb2312", body=f"<p>{NAMES}</p>")
    text, encoding = decode_bytes(source.encode("gbk"), content_type="text/html; charset=big5")
    assert text == source
    assert encoding == "gb18030"


def test_a_default_latin1_header_does_not_turn_gbk_into_mojibake():
    source = page(None)
    text, encoding = decode_bytes(source.encode("gbk"), content_type="text/html; charset=ISO-8859-1")
    assert (text, encoding) == (source, "gb18030")


def test_a_latin1_header_on_a_latin1_page_is_trusted():
    source = "<p>Café crème, déjà vu: l'élève à Paris.</p>"
    text, encoding = decode_bytes(source.encode("latin-1"), content_type="text/html; charset=ISO-8859-1")
    assert (text, encoding) == (source, "iso8859-1")


def test_undeclared_gbk_text_and_a_short_gbk_title():
    title = "平潭综合实验区2019年度政府信息公开工作年度报告"
    assert decode_bytes(title.encode("gbk")) == (title, "gb18030")
    long_text = (title + "\n" + NAMES + "\n") * 100
    assert decode_bytes(long_text.encode("gbk")) == (long_text, "gb18030")


def test_gb18030_only_characters():
    text = "㐀汉字𠀀"  # Extension A and B need GB18030 four-byte sequences
    assert decode_bytes(text.encode("gb18030")) == (text, "gb18030")


def test_gbk_with_one_corrupt_byte_keeps_the_key_strings():
    raw = page("gb2312").encode("gbk")
    cut = raw.index("行政复议".encode("gbk")) - 2
    damaged = raw[:cut] + b"\xff" + raw[cut:]
    text, encoding = decode_bytes(damaged)
    assert encoding == "gb18030"
    assert "本年新收政府信息公开申请数量" in text
    assert "行政复议结果维持" in text
    assert 1 <= text.count("\ufffd") <= 2


def test_utf8_page_with_a_gbk_footer_keeps_the_body():
    body = "<p>正文：本年新收政府信息公开申请数量</p>" * 30
    raw = body.encode("utf-8") + "<p>主办单位：某某市人民政府办公室</p>".encode("gbk")
    text, encoding = decode_bytes(raw)
    assert encoding == "utf-8"
    assert text.startswith(body)


def test_utf8_page_with_a_gbk_footer_and_a_gb2312_meta_keeps_the_body():
    # GB18030 reads most UTF-8 bytes without an error, as noise: the declaration must not win
    body = '<meta charset="gb2312"><p>正文：本年新收政府信息公开申请数量</p>' * 30
    raw = body.encode("utf-8") + "<p>主办单位：某某市人民政府办公室</p>".encode("gbk")
    text, encoding = decode_bytes(raw)
    assert encoding == "utf-8"
    assert text.startswith(body)


def test_non_chinese_text_goes_to_charset_normalizer():
    source = "Привет, это проверка кодировки. Съешь же ещё этих мягких французских булок. " * 5
    text, encoding = decode_bytes(source.encode("cp1251"))
    assert text == source
    assert encoding == "cp1251"


def test_xml_declaration_counts_as_a_declaration():
    source = '<?xml version="1.0" encoding="gb2312"?>' + page(None)
    assert decode_bytes(source.encode("gbk")) == (source, "gb18030")


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("GB2312", "gb18030"),
        ("gbk", "gb18030"),
        ("x-gbk", "gb18030"),
        ("CP936", "gb18030"),
        ("gb_2312-80", "gb18030"),
        ("EUC-CN", "gb18030"),
        ("GB18030", "gb18030"),
        ("utf8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("big5", "big5"),
        ("utf-16", None),  # a UTF-16 claim on 8-bit bytes is wrong (HTML5 reads it as UTF-8)
        ("no-such-charset", None),
        ("", None),
    ],
)
def test_normalize_charset(label, codec):
    assert normalize_charset(label) == codec


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_decode_without_raising(data):
    text, encoding = decode_bytes(data)
    assert isinstance(text, str)
    assert codecs.lookup(encoding)


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(codec="gbk", exclude_categories=("Cs", "Cc")), min_size=1, max_size=200))
def test_any_utf8_text_round_trips(text):
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")


def test_extract_document_reads_a_gbk_page_with_a_corrupt_byte():
    raw = page("gb2312", body="<p>第一段</p>" + BODY * 20).encode("gbk")
    damaged = raw[:200] + b"\xfe" + raw[200:]
    doc = extract_document(damaged)
    assert doc.media_type == "text/html"
    assert "本年新收政府信息公开申请数量" in doc.text()


def test_extract_document_rejects_random_bytes():
    noise = random.Random(20240131).randbytes(4096)
    with pytest.raises(UnsupportedMediaType):
        extract_document(noise)
