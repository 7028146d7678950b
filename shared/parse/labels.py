"""Label normalisation and matching: how a printed label finds its template row or column.

Three levels of sameness, cheapest first:

1. ``normalise_label`` — NFKC (full-width brackets, digits and colons become ASCII),
   every kind of whitespace and newline removed (wrapped header cells such as
   ``本年新\\n制作数量`` or ``商业 企业``), quotes dropped, ``1、`` → ``1.``.
2. ``core_label`` — the normalised label without its numbering prefix (``一、``,
   ``（三）``, ``1.``) and without punctuation, so ``（二）部分公开（区分处理的），只计…``
   and the official ``（二）部分公开（区分处理的，只计…）`` are the same core.
3. Fuzzy: a similarity ratio between cores (``difflib.SequenceMatcher``), accepted
   at :data:`FUZZY_THRESHOLD` when one candidate clearly wins.

Matching never relies on position. A match says how it was made (``kind``) so the
parser can report label deviations and lower its confidence for fuzzy ones.

Why ``difflib`` rather than rapidfuzz: exact and variant lookups are dict hits and
resolve almost every label; the fuzzy path only runs for the rare label that misses
them, on strings under ~60 characters against ≤ 30 candidates, where difflib costs
microseconds. That keeps the core free of a compiled dependency.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Literal

FUZZY_THRESHOLD = 0.85
# a fuzzy winner must beat the runner-up by this much, or the label stays unmatched
FUZZY_MARGIN = 0.05
# labels this short must match exactly: "其他" vs "其他处理" is not a typo
MIN_FUZZY_LENGTH = 4

MatchKind = Literal["exact", "variant", "prefix", "fuzzy"]

_WHITESPACE = re.compile(r"[\s\u00a0\u2000-\u200b\u3000\ufeff]+")
_QUOTES = str.maketrans("", "", "\"'“”‘’「」『』〝〞")
_ENUM_COMMA = re.compile(r"^(\d+)[、,，]")
_NUMBERING = re.compile(
    r"^(?:"
    r"[一二三四五六七八九十]+[、.．]"
    r"|\([一二三四五六七八九十]+\)"
    r"|\d+[.、)]"
    r"|\(\d+\)"
    r"|[①②③④⑤⑥⑦⑧⑨⑩]"
    r")"
)
_PUNCT = re.compile(r"[()\[\]【】〔〕《》<>,，.。、;；:：!！?？/\\|·・\-—_~～*]+")
_NOISE = re.compile(r"\[bookmark:[^\]]*\]", re.I)


@lru_cache(maxsize=16384)
def normalise_label(text: str) -> str:
    """Width-, whitespace- and quote-insensitive form of a printed label."""
    s = unicodedata.normalize("NFKC", _NOISE.sub("", text))
    s = _WHITESPACE.sub("", s).translate(_QUOTES)
    return _ENUM_COMMA.sub(r"\1.", s)


def strip_numbering(normalised: str) -> str:
    """``三、(一)予以公开`` → ``予以公开``: numbering prefixes removed, repeatedly."""
    s = normalised
    while True:
        stripped = _NUMBERING.sub("", s, count=1)
        if stripped == s:
            return s
        s = stripped


@lru_cache(maxsize=8192)
def core_label(text: str) -> str:
    """The comparable heart of a label: normalised, unnumbered, without punctuation."""
    return _PUNCT.sub("", strip_numbering(normalise_label(text)))


def similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


@dataclass(frozen=True, slots=True)
class LabelMatch:
    key: str
    kind: MatchKind
    score: float  # 1.0 exact/variant, lower for prefix/fuzzy
    official: str

    @property
    def deviates(self) -> bool:
        """True when the printed wording is not the official one (variants included)."""
        return self.kind != "exact"


class LabelIndex:
    """Looks printed labels up among a fixed set of (key, official, variants).

    ``exact`` = the printed core equals the official core; ``variant`` = it equals a
    known variant; ``prefix`` = it starts with the official/variant core followed by
    an annotation (e.g. ``…申请数量（件）``); ``fuzzy`` = similarity ≥ threshold.
    """

    CACHE_SIZE = 4096

    def __init__(self, entries: Iterable[tuple[str, str, tuple[str, ...]]], *, allow_prefix: bool = True):
        self._cache: dict[tuple[str, frozenset[str] | None, bool], LabelMatch | None] = {}
        self._exact: dict[str, tuple[str, str]] = {}
        self._variant: dict[str, tuple[str, str]] = {}
        self._cores: list[tuple[str, str, str]] = []  # (core, key, official)
        self._allow_prefix = allow_prefix
        for key, official, variants in entries:
            core = core_label(official)
            self._exact.setdefault(core, (key, official))
            self._cores.append((core, key, official))
            for v in variants:
                vc = core_label(v)
                if vc not in self._exact:
                    self._variant.setdefault(vc, (key, official))
                self._cores.append((vc, key, official))

    def match(
        self, text: str, *, only: frozenset[str] | None = None, fuzzy: bool = True
    ) -> LabelMatch | None:
        """The best match for ``text``; ``only`` restricts the candidate keys (e.g. a group);
        ``fuzzy=False`` stops after the exact, variant and prefix lookups."""
        core = core_label(text)
        if not core:
            return None
        cache_key = (core, only, fuzzy)
        if cache_key in self._cache:
            return self._cache[cache_key]
        found = self._match(core, only, fuzzy)
        if len(self._cache) < self.CACHE_SIZE:
            self._cache[cache_key] = found
        return found

    def _match(self, core: str, only: frozenset[str] | None, fuzzy: bool) -> LabelMatch | None:
        hit = self._exact.get(core)
        if hit and (only is None or hit[0] in only):
            return LabelMatch(hit[0], "exact", 1.0, hit[1])
        hit = self._variant.get(core)
        if hit and (only is None or hit[0] in only):
            return LabelMatch(hit[0], "variant", 1.0, hit[1])
        candidates = [c for c in self._cores if only is None or c[1] in only]
        if self._allow_prefix:
            # longest known core that the printed label starts with, e.g. "部分公开" in
            # "部分公开区分处理的只计这一情形" (a reworded annotation)
            best: tuple[str, str, str] | None = None
            for c in candidates:
                if (
                    len(c[0]) >= MIN_FUZZY_LENGTH - 1
                    and core.startswith(c[0])
                    and (best is None or len(c[0]) > len(best[0]))
                ):
                    best = c
            if best is not None:
                return LabelMatch(best[1], "prefix", 0.95, best[2])
        if not fuzzy or len(core) < MIN_FUZZY_LENGTH:
            return None
        scored: dict[str, tuple[float, str]] = {}
        for c_core, key, official in candidates:
            if (
                len(c_core) < MIN_FUZZY_LENGTH
                or abs(len(c_core) - len(core)) > max(len(c_core), len(core)) // 2
            ):
                continue
            matcher = SequenceMatcher(None, core, c_core, autojunk=False)
            if matcher.real_quick_ratio() < FUZZY_THRESHOLD or matcher.quick_ratio() < FUZZY_THRESHOLD:
                continue
            r = matcher.ratio()
            if r > scored.get(key, (0.0, ""))[0]:
                scored[key] = (r, official)
        if not scored:
            return None
        ranked = sorted(scored.items(), key=lambda kv: kv[1][0], reverse=True)
        key, (ratio, official) = ranked[0]
        runner_up = ranked[1][1][0] if len(ranked) > 1 else 0.0
        if ratio >= FUZZY_THRESHOLD and ratio - runner_up >= FUZZY_MARGIN:
            return LabelMatch(key, "fuzzy", round(ratio, 3), official)
        return None
