"""The cross-report rules' entries in :data:`RULES` (scope ``"store"``).

They need two reports (or the store's list of tracked agencies), so the store
runs them, not :func:`shared.rules.check_report`. Their ids, severities and
titles are declared once, in :data:`shared.rules.cross.CROSS_RULES` (the store
engineer's module, pure functions); this module only enters them in the table
with the pure function (``hook``) that implements each:

- ``shared.rules.cross:check_against_previous(current, previous) -> list[Finding]`` —
  ``carry_over_mismatch``, ``in_force_rollforward``, ``copied_report``, ``cloned_tables``;
- ``shared.rules.cross:check_revision(before, after, *, revision) -> list[Finding]`` —
  ``report_changed`` (from ``diff_reports``);
- ``shared.rules.cross:check_missing_report(agency, level, year, *, today, …)`` — ``missing_report``.
"""

from __future__ import annotations

from shared.rules.cross import CROSS_RULES
from shared.rules.registry import store_rule

CROSS = "shared.rules.cross"
HOOKS: dict[str, str] = {
    "carry_over_mismatch": f"{CROSS}:check_against_previous",
    "in_force_rollforward": f"{CROSS}:check_against_previous",
    "copied_report": f"{CROSS}:check_against_previous",
    "cloned_tables": f"{CROSS}:check_against_previous",
    "report_changed": f"{CROSS}:check_revision",
    "missing_report": f"{CROSS}:check_missing_report",
}

for _cross_rule in CROSS_RULES:
    store_rule(_cross_rule.id, _cross_rule.severity, _cross_rule.title, hook=HOOKS.get(_cross_rule.id))
