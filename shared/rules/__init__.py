"""The rule engine: the rules of ``spec/domain.md`` as a table of small pure functions.

Public API::

    from shared.rules import RULES, check_report, CheckContext, Thresholds

    findings = check_report(report, today=date(2024, 3, 1))
    findings = check_report(report, context=CheckContext(
        today=today, thresholds=Thresholds().with_township_deadline("02-28")))

- :data:`RULES` — the ordered table (``.id``, ``.severity``, ``.title``, ``.scope``,
  ``.describe()``); single-report rules first, then the cross-report ones the
  store runs (scope ``"store"``, see :mod:`shared.rules.store_rules`).
- :func:`check_report` — findings for one record; pure (no clock, no settings).
- Fingerprints: ``finding.fingerprint(report.identity())`` — report identity,
  rule id and the sorted cells; stable across re-runs.

- Blank handling (imputed omitted totals, blank tables) is done once, in
  :mod:`shared.rules.facts`; findings on cells the parser doubted
  (``report.confidence.uncertain_cells``) are lowered by :mod:`shared.rules.engine`.
- Thresholds (deadlines by filer level, template years, amount ceilings, the
  low-confidence mark) are data in :mod:`shared.rules.thresholds`.

Adding a rule: one decorated function in the module of its kind, plus its pass
and fail cases in ``tests/unit/rule_cases.py``.
"""

from __future__ import annotations

# Imported in table order (domain.md's): each module registers its rules as it is imported.
# isort: off
from shared.rules import arithmetic as _arithmetic  # noqa: F401
from shared.rules import structure as _structure  # noqa: F401
from shared.rules import narrative as _narrative  # noqa: F401
from shared.rules import amounts as _amounts  # noqa: F401
from shared.rules import splits as _splits  # noqa: F401
from shared.rules import store_rules as _store_rules  # noqa: F401

# isort: on
from shared.rules.engine import check_report, run_rules
from shared.rules.facts import CheckContext, Facts, prepare_facts
from shared.rules.level import infer_filer_level
from shared.rules.registry import RULES, Rule, Violation, rule_by_id
from shared.rules.thresholds import DEFAULT_THRESHOLDS, FilerLevel, MonthDay, Thresholds

__all__ = [
    "DEFAULT_THRESHOLDS",
    "RULES",
    "CheckContext",
    "Facts",
    "FilerLevel",
    "MonthDay",
    "Rule",
    "Thresholds",
    "Violation",
    "check_report",
    "infer_filer_level",
    "prepare_facts",
    "rule_by_id",
    "run_rules",
]
