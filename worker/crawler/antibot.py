"""Anti-bot challenges and WAF block pages (pure): recognise them, never mistake them for content.

A site behind 瑞数 (River Security) answers the first request with **412** and an obfuscated
script that sets a cookie (``$_ts``, cookies ending in ``…80S``/``…80T``); 加速乐 answers **521**
with ``document.cookie=…__jsl_clearance…``; Alibaba Cloud's WAF with ``acw_sc__v2``; 安全狗,
云锁, 知道创宇/创宇盾 and Cloudflare return block or "checking your browser" pages, often with
status 200 (crawling.md §3.4). A page like that is *blocked*, not "no report": the crawler
records it and backs off; bypassing is a policy decision, not a default.

:func:`detect_challenge` returns a short reason (``ruishu``, ``jsl``, ``aliyun-waf``, ``safedog``,
``yunsuo``, ``knownsec``, ``cloudflare``, ``waf``, ``js-challenge``) or ``None``. Signatures are
the table :data:`SIGNATURES`: a new vendor is one entry plus a test snippet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# statuses that challenge gateways use for their first answer
CHALLENGE_STATUSES: frozenset[int] = frozenset({202, 403, 405, 412, 429, 503, 521})
# a block or challenge page is small; real report pages are not (bytes, after decoding)
SMALL_PAGE_CHARS = 32 * 1024
# visible text (outside scripts and tags) below this means "a page that only runs a script"
SCRIPT_ONLY_TEXT_CHARS = 40
# block pages say one or two sentences; a report says thousands of characters
BLOCK_PAGE_TEXT_CHARS = 2000
_SAMPLE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Signature:
    reason: str
    body: re.Pattern[str] | None = None  # searched in the decoded body
    cookie: re.Pattern[str] | None = None  # searched in Set-Cookie
    header: tuple[str, re.Pattern[str]] | None = None  # (header name, pattern on its value)
    # script identifiers are specific at any size; free-text markers only count on small pages
    small_pages_only: bool = False


SIGNATURES: tuple[Signature, ...] = (
    Signature("ruishu", body=re.compile(r"\$_ts\s*=|\$_ts\.(nsd|cd)\b|<meta[^>]+\br=['\"]m['\"]")),
    Signature("ruishu", cookie=re.compile(r"\b[A-Za-z0-9]{8,}80[ST]=|\bNfBCSins2OywS=")),
    Signature("jsl", body=re.compile(r"__jsl_clearance|_jsl_clearance_s|go\(\{\s*\"bts\"")),
    # the cookie name is often spelled out one character at a time: ('_')+('_')+('j')+('s')+('l')
    Signature("jsl", body=re.compile(r"\('_'\)\+\('_'\)\+\('j'\)\+\('s'\)\+\('l'\)")),
    Signature("jsl", cookie=re.compile(r"__jsl_clearance|__jsluid_[hs]=")),
    Signature("aliyun-waf", body=re.compile(r"acw_sc__v2|_waf_bd8ce2ce37|errors\.aliyun\.com")),
    Signature(
        "aliyun-waf", body=re.compile(r"由于您访问的URL有可能对网站造成安全威胁"), small_pages_only=True
    ),
    Signature("safedog", body=re.compile(r"safedog|安全狗|您的请求带有不合法参数"), small_pages_only=True),
    Signature("safedog", cookie=re.compile(r"safedog-flow-item")),
    Signature("safedog", header=("server", re.compile(r"safedog", re.I))),
    Signature("yunsuo", body=re.compile(r"yunsuo_session_verify|yunsuologo|云锁"), small_pages_only=True),
    Signature("yunsuo", cookie=re.compile(r"yunsuo_session_verify|security_session_verify")),
    Signature(
        "knownsec", body=re.compile(r"创宇盾|365cyd|知道创宇|yunaq\.com|jiasule"), small_pages_only=True
    ),
    Signature("cloudflare", header=("cf-mitigated", re.compile(r"challenge", re.I))),
    Signature("cloudflare", body=re.compile(r"cf_chl_|challenge-platform|cf-browser-verification")),
    Signature(
        "cloudflare",
        body=re.compile(r"Attention Required! \| Cloudflare|Just a moment\.\.\."),
        small_pages_only=True,
    ),
    Signature(
        "waf",
        body=re.compile(
            r"(网站|Web应用|WEB应用|应用)防火墙|您的访问被拦截|访问已被拦截|请求已被拦截|拦截了您的访问|"
            r"疑似黑客攻击|安全防护系统|waf\.tencent-cloud|360wzb|yunjiasu"
        ),
        small_pages_only=True,
    ),
)

_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.I | re.S)
_STYLE = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>|&[a-z#0-9]+;", re.I)
# what a challenge script does: set a cookie and load the page again, or run obfuscated code
_CHALLENGE_SCRIPT = re.compile(
    r"document\.cookie\s*=|location\.reload\s*\(|eval\s*\(\s*function|\\x[0-9a-f]{2}(?:\\x[0-9a-f]{2}){20}",
    re.I,
)


def _decode_sample(body: bytes) -> str:
    sample = body[:_SAMPLE_BYTES]
    try:
        return sample.decode("utf-8")
    except UnicodeDecodeError:
        # both readings: markers may be ASCII identifiers or GB-encoded Chinese
        return sample.decode("utf-8", errors="ignore") + "\n" + sample.decode("gb18030", errors="ignore")


def visible_text_length(html: str) -> int:
    text = _TAG.sub(" ", _STYLE.sub(" ", _SCRIPT.sub(" ", html)))
    return len("".join(text.split()))


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((str(v) for k, v in headers.items() if k.lower() == name), "")


def detect_challenge(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """Why this response is an anti-bot challenge or WAF block page, or ``None`` if it is not."""
    text = _decode_sample(body)
    visible = visible_text_length(text) if len(text) <= SMALL_PAGE_CHARS else SMALL_PAGE_CHARS
    small = visible < BLOCK_PAGE_TEXT_CHARS
    script_only = visible < SCRIPT_ONLY_TEXT_CHARS
    suspicious = status in CHALLENGE_STATUSES or script_only
    cookies = _header(headers, "set-cookie")
    for signature in SIGNATURES:
        if signature.small_pages_only and not small:
            continue
        if signature.header is not None:
            name, pattern = signature.header
            if pattern.search(_header(headers, name)):
                return signature.reason
        if signature.cookie is not None and suspicious and signature.cookie.search(cookies):
            return signature.reason
        if (
            signature.body is not None
            and (suspicious or signature.small_pages_only)
            and signature.body.search(text)
        ):
            return signature.reason
    scripts = " ".join(match.group(1) for match in _SCRIPT.finditer(text))
    if script_only and scripts.strip() and (status in (412, 521) or _CHALLENGE_SCRIPT.search(scripts)):
        return "js-challenge"
    return None
