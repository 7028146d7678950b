"""The rule table: each rule declared once, by a decorator on one small pure function.

A single-report rule is ``(facts: Facts) -> Iterable[Violation]``; the engine
turns each :class:`Violation` into a :class:`shared.record.Finding` with the
rule's id and declared severity (and lowers the severity when the parser was
unsure of the cells involved). Cross-report rules (scope ``"store"``) are
declared here too, so ``xxgk rules`` lists the whole catalogue, but they are run
by the store with two reports in hand; ``hook`` names the pure function that
implements them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.record import CellValue, Severity

if TYPE_CHECKING:
    from shared.rules.facts import Facts

Scope = Literal["report", "store"]


@dataclass(frozen=True, slots=True)
class Violation:
    """What a rule found, before the engine stamps it with rule id and severity."""

    message: str  # Chinese, one sentence, with the numbers
    cells: tuple[str, ...] = ()  # dotted paths (or a section key for a whole table)
    expected: CellValue | str | None = None
    actual: CellValue | str | None = None


RuleCheck = Callable[["Facts"], Iterable[Violation]]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str  # one line, Chinese
    scope: Scope = "report"
    check: RuleCheck | None = None
    # a failure of this rule may be extraction damage when the cells involved were uncertain
    extraction_sensitive: bool = False
    # "module:function" implementing a store-scope rule
    hook: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity,
            "scope": self.scope,
            "title": self.title,
        }
        if self.hook:
            out["hook"] = self.hook
        return out


RULES: list[Rule] = []


def _register(entry: Rule) -> Rule:
    if any(existing.id == entry.id for existing in RULES):
        raise ValueError(f"rule id {entry.id!r} registered twice")
    RULES.append(entry)
    return entry


def rule(
    rule_id: str, severity: Severity, title: str, *, extraction_sensitive: bool = False
) -> Callable[[RuleCheck], RuleCheck]:
    """Register a single-report rule: ``@rule("t4_sum", "error", "…")`` over ``def t4_sum(facts)``."""

    def register(check: RuleCheck) -> RuleCheck:
        _register(Rule(rule_id, severity, title, "report", check, extraction_sensitive=extraction_sensitive))
        return check

    return register


def store_rule(rule_id: str, severity: Severity, title: str, *, hook: str | None) -> Rule:
    """Declare a cross-report rule (run by the store, implemented by ``hook``)."""
    return _register(Rule(rule_id, severity, title, "store", None, hook=hook))


def rule_by_id(rule_id: str) -> Rule:
    for entry in RULES:
        if entry.id == rule_id:
            return entry
    raise KeyError(rule_id)
