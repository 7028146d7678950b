"""Property tests: consistent records raise no error; any single broken count is pointed at."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.record import Report, empty_report
from shared.rules import check_report
from shared.rules.facts import APPLICANT_COLUMNS, REVIEW_PARTS
from shared.templates import TEMPLATE_IDS, TEMPLATES

EXAMPLES = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
counts = st.integers(min_value=0, max_value=40)


def _blank_zeros(report: Report, *, components: bool, totals: bool) -> None:
    for section in ("applications", "reviews"):
        for cols in getattr(report, section).values():
            for col, value in cols.items():
                is_total = col == "total"
                if value == 0 and ((is_total and totals) or (not is_total and components)):
                    cols[col] = None


def _keep_tables_filled(report: Report) -> None:
    # a wholly blank table is blank_table's (an error by definition), not a consistent record
    for section in ("applications", "reviews"):
        table = getattr(report, section)
        if all(v is None for cols in table.values() for v in cols.values()):
            first = next(iter(table))
            table[first]["total"] = 0


@st.composite
def consistent_reports(draw: st.DrawFn, *, may_blank_totals: bool = True) -> Report:
    template = draw(st.sampled_from(TEMPLATE_IDS))
    layout = TEMPLATES[template]
    report = empty_report(template)
    apps = report.applications
    outcome_rows = layout.outcome_rows
    for col in APPLICANT_COLUMNS:
        if draw(st.booleans()):  # many columns are all zero in real reports
            values = draw(st.lists(st.integers(0, 25) | st.just(0), min_size=len(outcome_rows),
                                   max_size=len(outcome_rows)))
        else:
            values = [0] * len(outcome_rows)
        for row, value in zip(outcome_rows, values, strict=True):
            apps[row][col] = value
        handled = sum(values)
        forward = draw(st.integers(0, 5))
        carried = draw(st.integers(0, min(5, handled + forward)))
        apps["total"][col] = handled
        apps["carried_forward"][col] = forward
        apps["carried_over"][col] = carried
        apps["new_received"][col] = handled + forward - carried
    for cols in apps.values():
        cols["total"] = sum(cols[c] or 0 for c in APPLICANT_COLUMNS)
    for cols in report.reviews.values():
        for outcome in REVIEW_PARTS:
            cols[outcome] = draw(st.integers(0, 6))
        cols["total"] = sum(cols[o] or 0 for o in REVIEW_PARTS)
    for item in layout.disclosure:
        for fld in item.fields:
            if fld.key in item.amount_fields:
                value: float | int = draw(st.integers(0, 9_999_999)) / 10_000
            elif fld.key in item.signed_fields:
                value = draw(st.integers(-50, 50))
            else:
                value = draw(counts)
            report.active_disclosure[item.key][fld.key] = value

    blank_components = draw(st.booleans())
    blank_totals = may_blank_totals and draw(st.booleans())
    _blank_zeros(report, components=blank_components, totals=blank_totals)
    if may_blank_totals and draw(st.booleans()):
        # the 2019 Shanghai way: the 总计 column left blank for the outcome rows
        for row in outcome_rows:
            apps[row]["total"] = None
    _keep_tables_filled(report)
    return report


@EXAMPLES
@given(consistent_reports())
def test_consistent_records_raise_no_error(report: Report) -> None:
    findings = check_report(report)
    assert [f for f in findings if f.severity == "error"] == []
    # blank totals are reported, and nothing else speaks about a consistent record
    assert {f.rule for f in findings} <= {"total_omitted"}


def _count_cells(report: Report) -> list[str]:
    return [p for p, _ in report.iter_cells() if p.startswith(("applications.", "reviews."))]


@EXAMPLES
@given(consistent_reports(may_blank_totals=False), st.data())
def test_changing_any_count_raises_an_error_naming_that_cell(report: Report, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_count_cells(report)), label="cell")
    delta = data.draw(st.integers(-30, 30).filter(bool), label="delta")
    before = report.cell(path) or 0
    report.set_cell(path, before + delta)
    findings = check_report(report)
    errors = [f for f in findings if f.severity == "error" and path in f.cells]
    assert errors, (path, before, delta, [(f.rule, f.severity, f.cells[:3]) for f in findings])


@EXAMPLES
@given(consistent_reports())
def test_checking_leaves_the_record_untouched(report: Report) -> None:
    snapshot = report.model_dump()
    check_report(report)
    assert report.model_dump() == snapshot
