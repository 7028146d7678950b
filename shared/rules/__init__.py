"""PLACEHOLDER until the rule engine lands (issue 3): replaced wholesale."""

from __future__ import annotations

from datetime import date

from shared.record import Finding, Report

RULES: list = []


def check_report(report: Report, *, today: date | None = None, context: object = None) -> list[Finding]:
    return []
