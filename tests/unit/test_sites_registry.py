"""The site registry file format (YAML and CSV): what is accepted, what is refused and why."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError
from worker.sites import parse_registry

YAML = """
sites:
  - name: 丰城市人民政府
    agency: 丰城市人民政府
    level: county
    region_code: "360981"
    entry_urls:
      - http://www.jxfc.gov.cn/col/col4321/index.html
  - name: 固镇县城市管理局
    level: department
    entry_urls: http://www.guzhen.gov.cn/a/index.html http://www.guzhen.gov.cn/b/index.html
    domains: [www.guzhen.gov.cn, cgj.guzhen.gov.cn]
"""


def test_yaml_entries_become_site_specs_with_a_crawl_scope():
    first, second = parse_registry(YAML)
    assert first.name == first.agency == "丰城市人民政府"
    assert (first.level, first.region_code) == ("government", "360981")  # "county" is a government
    assert first.scope_domains == ("www.jxfc.gov.cn",)  # default: the entry URLs' hosts
    assert second.agency is None and second.level == "department"
    assert second.entry_urls == (
        "http://www.guzhen.gov.cn/a/index.html",
        "http://www.guzhen.gov.cn/b/index.html",
    )
    assert second.scope_domains == ("www.guzhen.gov.cn", "cgj.guzhen.gov.cn")


def test_a_bare_list_and_csv_are_accepted_too():
    assert parse_registry("- name: a\n  entry_urls: [http://a.gov.cn/]\n")[0].name == "a"
    csv_text = "name,agency,level,region_code,entry_urls,domains\n某镇,某镇人民政府,乡镇,411224,http://x.gov.cn/nb/;http://x.gov.cn/nb2/,\n"
    (spec,) = parse_registry(csv_text, filename="sites.csv")
    assert spec.level == "township" and len(spec.entry_urls) == 2 and spec.region_code == "411224"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sites: 3", "expected a list of sites"),
        ("- agency: x\n  entry_urls: [http://a.gov.cn/]", "every site needs a name"),
        ("- name: a", "no entry_urls"),
        ("- name: a\n  entry_urls: [ftp://a.gov.cn/]", "is not an http(s) URL"),
        ("- name: a\n  level: ministry\n  entry_urls: [http://a.gov.cn/]", "level 'ministry'"),
        ("- name: a\n  region_code: '3609'\n  entry_urls: [http://a.gov.cn/]", "6-digit"),
        (
            "- name: a\n  entry_urls: [http://a.gov.cn/]\n- name: a\n  entry_urls: [http://b.gov.cn/]",
            "appears twice",
        ),
        ("sites: [", "not valid YAML"),
    ],
)
def test_mistakes_are_refused_with_a_message_that_says_where(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_registry(text)


def test_a_gbk_csv_from_excel_is_read(tmp_path):
    from worker.sites import read_registry

    csv_text = "name,agency,level,region_code,entry_urls\r\n丰城市人民政府,丰城市人民政府,政府,360981,http://www.jxfc.gov.cn/nb/\r\n"
    registry = tmp_path / "sites.csv"
    registry.write_bytes(csv_text.encode("gbk"))
    (spec,) = read_registry(registry)
    assert (spec.name, spec.level, spec.region_code) == ("丰城市人民政府", "government", "360981")
    registry.write_bytes(b"\xef\xbb\xbf" + csv_text.encode("utf-8"))  # UTF-8 with a BOM still works
    assert read_registry(registry)[0].name == "丰城市人民政府"


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("sites.yaml", b"- name: a\n  entry_urls: ['http://[::1/']\n", "is not an http(s) URL"),
        ("sites.yaml", b"- name: a\n  entry_urls: ['http://a.gov.cn:99999/']\n", "is not an http(s) URL"),
        ("sites.csv", b"name,entry_urls\n\x00\x01\x02,\x00\n", "not a text file"),
        ("sites.yaml", b"[" * 5000, "not valid YAML"),
    ],
)
def test_a_malformed_registry_file_is_a_config_error(tmp_path, filename, content, message):
    from worker.sites import read_registry

    registry = tmp_path / filename
    registry.write_bytes(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        read_registry(registry)
    assert "\n" not in str(raised.value)


def test_a_yaml_syntax_error_is_one_line():
    with pytest.raises(ConfigError) as raised:
        parse_registry("sites:\n  - name: a\n   entry_urls: [\n")
    assert "not valid YAML" in str(raised.value) and "\n" not in str(raised.value)
