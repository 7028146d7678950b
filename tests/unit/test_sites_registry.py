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
