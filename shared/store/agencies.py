"""Agency identity: the same body across years and carriers.

A body is its normalised name (``normalise_agency_name``) within a region
(the 6-digit 行政区划代码, when known: the first six characters of the page's
10-character SiteIDCode, or the site registry's ``region_code``). Names are
normalised so that 郑庄子镇 / 郑庄子镇人民政府 / 郑庄子镇政府 and full- vs
half-width variants are one body; departments keep their full name.

The level (department / government / township) decides the publication
deadline; it comes from the site registry when known, else from the name
(``shared.rules.level.infer_filer_level``).
"""

from __future__ import annotations

import re
import unicodedata

from sqlmodel import Session, select

from shared.rules.level import infer_filer_level
from shared.rules.thresholds import FilerLevel
from shared.store.models import AGENCY_LEVELS, Agency, Site

# a government's name ends with one of these; stripped so 郑庄子镇人民政府 == 郑庄子镇
# (a government's 办公室/办公厅 is a department of its own and keeps its name)
GOVERNMENT_SUFFIXES: tuple[str, ...] = (
    "人民政府",
    "管理委员会",
    "管委会",
    "政府",
)
# administrative units: a government's name ends with one of these once its suffix is gone
ADMINISTRATIVE_UNITS: tuple[str, ...] = (
    "乡",
    "镇",
    "街道",
    "苏木",
    "省",
    "自治区",
    "市",
    "自治州",
    "州",
    "盟",
    "县",
    "自治县",
    "旗",
    "区",
)

_NOISE = re.compile(r"[\s\u3000·・\-—_()（）【】\[\]<>《》〈〉\"'“”‘’]+")
_SITE_ID_CODE = re.compile(r"^\d{6}")


def normalise_agency_name(name: str) -> str:
    """The identity key of a body's name (NFKC, no spaces or brackets, no government suffix)."""
    text = _NOISE.sub("", unicodedata.normalize("NFKC", name))
    for suffix in GOVERNMENT_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            stem = text[: -len(suffix)]
            if stem.endswith(ADMINISTRATIVE_UNITS):
                return stem
    if text.endswith("街道办事处"):
        return text[: -len("办事处")]
    return text


def infer_level(name: str) -> str:
    """department | government | township, from the name alone (the rule engine's inference)."""
    return str(infer_filer_level(name) or FilerLevel.DEPARTMENT)


def region_code_from_site_id(site_id_code: str | None) -> str:
    """The 行政区划代码 in a SiteIDCode (its first six digits), or ``''``."""
    if not site_id_code:
        return ""
    match = _SITE_ID_CODE.match(site_id_code.strip())
    return match.group(0) if match else ""


def resolve_agency(
    session: Session,
    name: str,
    *,
    region_code: str = "",
    site_id_code: str | None = None,
    site: str | None = None,
    level: str | None = None,
) -> Agency:
    """Find or create the agency row for ``name`` in ``region_code`` (flushes, never commits).

    An agency first seen without a region adopts the region when a later
    report tells it; a report without a region matches the one agency of that
    name when there is exactly one."""
    key = normalise_agency_name(name)
    level = level if level in AGENCY_LEVELS else None  # a registry typo falls back to the name
    candidates = list(session.exec(select(Agency).where(Agency.key == key)).all())
    found = _pick(candidates, region_code)
    if found is None:
        found = Agency(
            key=key,
            name=name.strip(),
            level=level or infer_level(name),
            region_code=region_code,
            site_id_code=site_id_code,
            site=site,
        )
        session.add(found)
        session.flush()
        return found
    if region_code and not found.region_code:
        found.region_code = region_code
    if site_id_code and not found.site_id_code:
        found.site_id_code = site_id_code
    if site and not found.site:
        found.site = site
    if level and found.level != level:
        found.level = level
    session.add(found)
    return found


def _pick(candidates: list[Agency], region_code: str) -> Agency | None:
    if region_code:
        exact = [a for a in candidates if a.region_code == region_code]
        if exact:
            return exact[0]
        unknown = [a for a in candidates if not a.region_code]
        return unknown[0] if unknown else None
    if len(candidates) == 1:
        return candidates[0]
    unknown = [a for a in candidates if not a.region_code]
    return unknown[0] if unknown else None


def site_by_name(session: Session, name: str | None) -> Site | None:
    if not name:
        return None
    return session.exec(select(Site).where(Site.name == name)).first()


def agency_for_site(session: Session, site: Site) -> Agency | None:
    """The tracked agency of a registry entry, created (and linked) on first use."""
    if site.agency_id is not None:
        return session.get(Agency, site.agency_id)
    if not site.agency_name:
        return None
    agency = resolve_agency(
        session, site.agency_name, region_code=site.region_code or "", site=site.name, level=site.level
    )
    site.agency_id = agency.id
    session.add(site)
    return agency
