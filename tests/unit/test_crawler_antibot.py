"""Anti-bot challenge and WAF page recognition (crawling.md §3.4): blocked, never "no report"."""

from __future__ import annotations

import pytest

from worker.crawler.antibot import detect_challenge

RUISHU_412 = (
    b"<html><head><meta content=\"{qWd8vWJ0...}\" r='m'><script type=\"text/javascript\" r='m'>"
    b"$_ts=window['$_ts'];if(!$_ts)$_ts={};$_ts.nsd=12345;$_ts.cd=\"qxrDrr...\";</script>"
    b'<script type="text/javascript" charset="utf-8" src="/aBcD/eFgH.b4c45da.js" r=\'m\'></script>'
    b"</head><body></body></html>"
)
JSL_521 = (
    b"<script>document.cookie=('_')+('_')+('j')+('s')+('l')+('_')+('c')+('l')+('e')+('a')+('r')+"
    b"('a')+('n')+('c')+('e')+('_')+('s')+('=')+(-~[]+'...');location.href=location.pathname+"
    b"location.search</script>"
)
ALIYUN = (
    b"<html><script>var arg1='3B5C2E...';setTimeout('reload(arg2)',2);"
    b"function reload(x){document.cookie='acw_sc__v2='+x;document.location.reload();}</script></html>"
)
SAFEDOG_200 = (
    "<html><head><title>网站防火墙</title></head><body><div>您的请求带有不合法参数，已被网站管理员设置拦截！"
    "</div><div>可能原因：您提交的内容包含危险的攻击请求</div><a href='http://www.safedog.cn'>安全狗</a>"
    "</body></html>"
).encode()
YUNSUO = "<html><body><img src='/yunsuologo.png'>云锁提醒您：访问被拦截</body></html>".encode()
KNOWNSEC = (
    "<html><title>创宇盾</title><body>您的访问被拦截，请联系网站管理员 365cyd.com</body></html>".encode()
)
CLOUDFLARE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    b"<script src='/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1'></script></body></html>"
)
GENERIC_WAF_GBK = (
    "<html><body><h1>Web应用防火墙</h1><p>您的访问被拦截，疑似黑客攻击。</p></body></html>".encode("gbk")
)
RELOAD_ONLY = (
    b"<html><head><script>document.cookie='tk=1a2b3c;path=/';location.reload();</script></head></html>"
)

REPORT_PAGE = (
    "<html><head><title>XX区2023年政府信息公开工作年度报告</title>"
    "<script>var _hmt = _hmt || []; document.cookie='visited=1';</script></head><body>"
    + "<p>一、总体情况 2023年，XX区深入贯彻落实《中华人民共和国政府信息公开条例》……</p>" * 60
    + "<table><tr><td>本年新收政府信息公开申请数量</td><td>12</td></tr></table></body></html>"
).encode()


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason"),
    [
        (412, {"Set-Cookie": "FSSBBIl1UgzbN7N80S=abc; path=/"}, RUISHU_412, "ruishu"),
        (412, {"set-cookie": "NfBCSins2OywS=xyz; path=/"}, b"<script>x()</script>", "ruishu"),
        (200, {}, RUISHU_412, "ruishu"),  # some gateways answer 200 with the same page
        (521, {"Set-Cookie": "__jsluid_h=0123; path=/"}, JSL_521, "jsl"),
        (200, {}, ALIYUN, "aliyun-waf"),
        (200, {}, SAFEDOG_200, "safedog"),
        (403, {"Server": "Safedog/4.0"}, b"Forbidden", "safedog"),
        (200, {}, YUNSUO, "yunsuo"),
        (403, {}, KNOWNSEC, "knownsec"),
        (403, {"cf-mitigated": "challenge"}, b"", "cloudflare"),
        (503, {"Server": "cloudflare"}, CLOUDFLARE, "cloudflare"),
        (200, {"Content-Type": "text/html; charset=gbk"}, GENERIC_WAF_GBK, "waf"),
        (200, {}, RELOAD_ONLY, "js-challenge"),
        (412, {}, b"<html><script>var _0x1=['a'];eval(_0x1[0])</script></html>", "js-challenge"),
    ],
)
def test_challenges_are_recognised(status: int, headers: dict[str, str], body: bytes, reason: str) -> None:
    assert detect_challenge(status, headers, body) == reason


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (200, {}, REPORT_PAGE),  # a real page that happens to set a cookie in a script
        (200, {}, b"<html><script>window.location.href='/zfxxgk/index.shtml';</script></html>"),  # a redirect
        (404, {}, b"<html><body><h1>404 Not Found</h1><p>nginx</p></body></html>"),
        (521, {}, b""),  # Cloudflare "web server is down": a 5xx, not a challenge
        (412, {}, b"Precondition Failed"),
        (200, {"Set-Cookie": "acw_tc=2f624a1; path=/"}, REPORT_PAGE),  # Alibaba's load balancer cookie
        (200, {}, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj"),
        (200, {}, b""),
    ],
)
def test_ordinary_responses_are_not_challenges(status: int, headers: dict[str, str], body: bytes) -> None:
    assert detect_challenge(status, headers, body) is None


def test_a_long_report_quoting_a_waf_vendor_is_not_a_block_page() -> None:
    body = REPORT_PAGE.replace(b"</body>", "<p>本单位部署了网站防火墙（安全狗）。</p></body>".encode())
    assert detect_challenge(200, {}, body) is None
