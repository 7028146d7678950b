"""The site registry file: which government sites we watch (``xxgk sites import FILE``).

YAML (a list, or ``{sites: [...]}``) or CSV with a header row. One entry per agency::

    sites:
      - name: 丰城市人民政府                 # unique; re-importing the file updates in place
        agency: 丰城市人民政府               # the filer whose reports are tracked (default: name)
        level: government                    # government | department | township (default: from the name)
        region_code: "360981"                # 6-digit 行政区划代码 (quote it in YAML)
        entry_urls:                          # the portal, or better its 政府信息公开年报 column
          - http://www.jxfc.gov.cn/col/col4321/index.html
        domains: [www.jxfc.gov.cn]           # crawl scope (default: the entry URLs' hosts)

In CSV, ``entry_urls`` and ``domains`` hold several values separated by spaces or ``;``.
The file may be UTF-8 (with or without a BOM) or GBK/GB18030 — what Excel saves a CSV as on a
Chinese Windows; it is decoded by the project's one rule (``shared.extract.encoding``).
Anything malformed is a :class:`~shared.errors.ConfigError` naming the file and the entry.
The crawl stays on the site's own domains (plus ``*.gov.cn`` and
``XXGK_EXTRA_ALLOWED_DOMAINS``): spam sites clone government pages.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from sqlmodel import Session

from shared.errors import ConfigError
from shared.extract.encoding import decode_bytes
from shared.store.agencies import resolve_agency
from shared.store.crawl_state import SiteSpec, upsert_site

LEVELS: tuple[str, ...] = ("government", "department", "township")
# words people write for a level, mapped to the store's three
LEVEL_ALIASES: dict[str, str] = {
    "province": "government",
    "provincial": "government",
    "city": "government",
    "municipal": "government",
    "county": "government",
    "district": "government",
    "gov": "government",
    "本级": "government",
    "政府": "government",
    "dept": "department",
    "部门": "department",
    "town": "township",
    "乡镇": "township",
    "街道": "township",
    "subdistrict": "township",
}
_REGION_CODE = re.compile(r"^\d{6}$")
_LIST_SPLIT = re.compile(r"[\s;,]+")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in _LIST_SPLIT.split(value.strip()) if part]
    if isinstance(value, Iterable):
        return [str(part).strip() for part in value if str(part).strip()]
    return [str(value)]


def spec_from_mapping(entry: Mapping[str, Any], *, where: str) -> SiteSpec:
    """One registry entry → :class:`SiteSpec`, or a :class:`ConfigError` saying what is wrong and where."""
    name = str(entry.get("name") or "").strip()
    if not name:
        raise ConfigError(f"{where}: every site needs a name")
    urls = _as_list(entry.get("entry_urls") or entry.get("entry_url") or entry.get("urls"))
    if not urls:
        raise ConfigError(f"{where} ({name}): no entry_urls")
    for url in urls:
        try:
            parts = urlsplit(url)
            port = parts.port  # parsed lazily: ":99999" raises only here
        except ValueError:
            raise ConfigError(f"{where} ({name}): {url!r} is not an http(s) URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
            raise ConfigError(f"{where} ({name}): {url!r} is not an http(s) URL")
    level_text = str(entry.get("level") or "").strip()
    level = LEVEL_ALIASES.get(level_text.lower(), level_text.lower()) or None
    if level is not None and level not in LEVELS:
        raise ConfigError(f"{where} ({name}): level {level_text!r} is not one of {', '.join(LEVELS)}")
    region = str(entry.get("region_code") or "").strip() or None
    if region is not None and not _REGION_CODE.match(region):
        raise ConfigError(f"{where} ({name}): region_code {region!r} is not a 6-digit 行政区划代码")
    domains = tuple(d.lower().rstrip(".") for d in _as_list(entry.get("domains")))
    agency = str(entry.get("agency") or "").strip() or None
    return SiteSpec(
        name=name, entry_urls=tuple(urls), agency=agency, level=level, region_code=region, domains=domains
    )


def parse_registry(text: str, *, filename: str = "sites.yaml") -> list[SiteSpec]:
    """Read a registry file's text (YAML unless the name ends in ``.csv``)."""
    if filename.lower().endswith(".csv"):
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as exc:
            raise ConfigError(f"{filename}: not valid CSV ({exc})") from None
        entries: list[Mapping[str, Any]] = [{k.strip(): v for k, v in row.items() if k} for row in rows]
        where = "row {n}"
        first = 2
    else:
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            detail = " ".join(str(exc).split())  # PyYAML's message spans lines: keep it to one
            raise ConfigError(f"{filename}: not valid YAML ({detail})") from None
        if isinstance(data, Mapping):
            data = data.get("sites")
        if not isinstance(data, list) or not all(isinstance(e, Mapping) for e in data):
            raise ConfigError(f"{filename}: expected a list of sites (or a 'sites:' list)")
        entries, where, first = data, "site #{n}", 1
    specs = []
    for i, entry in enumerate(entries, start=first):
        label = f"{filename}: " + where.format(n=i)
        try:
            specs.append(spec_from_mapping(entry, where=label))
        except (TypeError, ValueError, AttributeError) as exc:
            # a value of a shape nobody planned for: still one line for the operator, no traceback
            raise ConfigError(f"{label}: malformed entry ({type(exc).__name__}: {exc})") from None
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"{filename}: the site name {spec.name!r} appears twice")
        seen.add(spec.name)
    return specs


def read_registry(path: Path) -> list[SiteSpec]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    # UTF-8 (BOM or not) or GBK/GB18030 from Excel; never raises (damage shows as U+FFFD)
    text, _encoding = decode_bytes(data)
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (NUL bytes)")
    return parse_registry(text, filename=str(path))


@dataclass(frozen=True)
class ImportOutcome:
    created: int
    updated: int
    names: tuple[str, ...]


def import_sites(
    session: Session, specs: Iterable[SiteSpec], *, now: datetime | None = None
) -> ImportOutcome:
    """Upsert every site and its tracked agency, in one transaction (commits)."""
    created = updated = 0
    names: list[str] = []
    for spec in specs:
        agency = resolve_agency(
            session,
            spec.agency or spec.name,
            region_code=spec.region_code or "",
            site=spec.name,
            level=spec.level,
        )
        _site, is_new = upsert_site(session, spec, agency_id=agency.id, now=now)
        created += is_new
        updated += not is_new
        names.append(spec.name)
    session.commit()
    return ImportOutcome(created, updated, tuple(names))
