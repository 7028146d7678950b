"""Glyphs and rules → blocks (shared.extract.layout): the geometry both PDF and OCR rely on."""

from __future__ import annotations

from shared.extract.blocks import Paragraph, Table
from shared.extract.layout import (
    Cell,
    Glyph,
    Line,
    PageLayout,
    Segment,
    TableFragment,
    assemble,
    fill_cells,
    find_tables,
    glyphs_to_lines,
    join_wrapped,
)


def grid_segments(
    xs: list[float], ys: list[float], *, skip: frozenset[tuple[str, int, int]] = frozenset()
) -> list[Segment]:
    """Rules of a full grid; ``skip`` removes pieces: ("v", column boundary, row) or
    ("h", row boundary, column)."""
    out = []
    for i, y in enumerate(ys):
        for c in range(len(xs) - 1):
            if ("h", i, c) not in skip:
                out.append(Segment(xs[c], y, xs[c + 1], y))
    for j, x in enumerate(xs):
        for r in range(len(ys) - 1):
            if ("v", j, r) not in skip:
                out.append(Segment(x, ys[r], x, ys[r + 1]))
    return out


def fragment(
    rows: list[list[str]], *, top: float = 100.0, width: float = 60.0, height: float = 20.0
) -> TableFragment:
    """A plain lattice fragment holding ``rows`` (no merges)."""
    xs = [50 + width * i for i in range(len(rows[0]) + 1)]
    ys = [top + height * i for i in range(len(rows) + 1)]
    cells = [
        Cell(r, r + 1, xs[c], xs[c + 1], text) for r, row in enumerate(rows) for c, text in enumerate(row)
    ]
    return TableFragment(cells, ys, xs[0], ys[0], xs[-1], ys[-1])


def glyphs(text: str, x: float, top: float, size: float = 10.0) -> list[Glyph]:
    return [Glyph(ch, x + i * size, top, x + (i + 1) * size, top + size) for i, ch in enumerate(text)]


def test_missing_rules_become_merged_cells() -> None:
    xs, ys = [0.0, 50.0, 100.0, 150.0], [0.0, 20.0, 40.0, 60.0]
    # row 0: no rule between columns 0|1 and 1|2 (one cell across); column 0: no rule under row 1
    segments = grid_segments(xs, ys, skip=frozenset({("v", 1, 0), ("v", 2, 0), ("h", 2, 0)}))
    (table,) = find_tables(segments)
    spans = sorted((c.r0, c.r1, c.x0, c.x1) for c in table.cells)
    assert (0, 1, 0.0, 150.0) in spans
    assert (1, 3, 0.0, 50.0) in spans
    assert table.nrows == 3


def test_a_framed_box_around_text_is_not_a_table() -> None:
    assert find_tables(grid_segments([0.0, 300.0], [0.0, 40.0])) == []


def test_glyphs_fill_their_cells_and_the_rest_stays_outside() -> None:
    (table,) = find_tables(grid_segments([0.0, 100.0, 200.0], [100.0, 130.0]))
    outside = fill_cells(table, [*glyphs("规章", 5, 110), *glyphs("12", 105, 110), *glyphs("标题", 5, 50)])
    assert [c.text for c in table.cells] == ["规章", "12"]
    assert "".join(g.text for g in outside) == "标题"


def test_lines_read_left_to_right_without_spaces_between_chinese_characters() -> None:
    wide = [Glyph(ch, 10 + 16 * i, 0, 20 + 16 * i, 10) for i, ch in enumerate("政府信息")]  # 6 pt gaps
    (line,) = glyphs_to_lines([*reversed(wide), *glyphs("2023", 100, 0, 5)])
    assert line.text == "政府信息 2023"
    assert (
        join_wrapped(["部分公开（区分处理的，", "只计这一情形）"]) == "部分公开（区分处理的，只计这一情形）"
    )
    assert join_wrapped(["Normative", "documents"]) == "Normative documents"


def _line(text: str, top: float, x1: float = 500.0) -> Line:
    return Line(text, 50.0, top, x1, top + 12, segments=[(50.0, x1, text)], height=12.0)


def test_running_headers_footers_and_page_numbers_are_dropped() -> None:
    def page(n: int) -> PageLayout:
        return PageLayout(
            600,
            800,
            [
                _line("某某县人民政府办公室", 20, 300),
                _line(f"第{n}页的第一行写满了整行", 300, 500),
                _line("最后一行", 315, 200),
                _line(f"- {n} -", 770, 120),
            ],
        )

    blocks = assemble([page(1), page(2), page(3)])
    assert [b.text for b in blocks if isinstance(b, Paragraph)] == [
        f"第{n}页的第一行写满了整行最后一行" for n in (1, 2, 3)
    ]


def test_a_wrapped_paragraph_is_joined_also_across_a_page_break() -> None:
    first = PageLayout(
        600, 800, [_line("为进一步做好政府信息公开工作，", 700), _line("一、总体情况", 400, 200)]
    )
    first.items.sort(key=lambda i: i.top)
    second = PageLayout(600, 800, [_line("特此报告。", 100, 150)])
    texts = [b.text for b in assemble([first, second]) if isinstance(b, Paragraph)]
    assert texts == ["一、总体情况", "为进一步做好政府信息公开工作，特此报告。"]


def _two_pages(upper: list[list[str]], lower: list[list[str]]) -> Table:
    blocks = assemble(
        [PageLayout(600, 800, [fragment(upper, top=600)]), PageLayout(600, 800, [fragment(lower, top=80)])]
    )
    (table,) = [b for b in blocks if isinstance(b, Table)]
    return table


def test_a_row_cut_by_the_page_break_is_stitched_back() -> None:
    table = _two_pages(
        [["（四）无法提供", "3.补正后申请内容仍不明", "0", "1"]],
        [["", "确", "", ""], ["（五）不予处理", "1.信访举报投诉类申请", "2", "3"]],
    )
    assert table.rows == (
        ("（四）无法提供", "3.补正后申请内容仍不明确", "0", "1"),
        ("（五）不予处理", "1.信访举报投诉类申请", "2", "3"),
    )


def test_a_new_row_at_the_top_of_the_page_is_not_stitched_even_when_blank() -> None:
    # blank figures (seed 001 style): only the label says it is a new row
    table = _two_pages([["行政处罚", "", ""]], [["行政强制", "", ""]])
    assert table.rows == (("行政处罚", "", ""), ("行政强制", "", ""))
    numbers = _two_pages([["3.其他", "0", "0"]], [["（七）总计", "0", "0"]])
    assert len(numbers.rows) == 2


def test_a_header_row_above_a_row_of_numbers_stays_two_rows() -> None:
    table = _two_pages([["结果维持", "结果纠正"]], [["0", "4"]])
    assert table.rows == (("结果维持", "结果纠正"), ("0", "4"))


def test_a_header_row_repeated_on_the_next_page_is_dropped() -> None:
    table = _two_pages([["信息内容", "数量"], ["规章", "1"]], [["信息内容", "数量"], ["行政许可", "2"]])
    assert table.rows == (("信息内容", "数量"), ("规章", "1"), ("行政许可", "2"))


def test_a_merged_cell_continuing_across_the_break_keeps_its_text() -> None:
    upper = fragment([["三、本年度办理结果", "（一）予以公开", "0"], ["", "（二）部分公开", "0"]], top=600)
    # column 0 is one cell over both rows on the first page, and one empty cell on the next
    upper.cells = [c for c in upper.cells if not (c.r0 == 1 and c.x0 == 50.0)]
    upper.cells[0].r1 = 2
    lower = fragment([["", "（三）不予公开", "0"], ["", "（七）总计", "0"]], top=80)
    lower.cells = [c for c in lower.cells if not (c.r0 == 1 and c.x0 == 50.0)]
    lower.cells[0].r1 = 2
    blocks = assemble([PageLayout(600, 800, [upper]), PageLayout(600, 800, [lower])])
    (table,) = [b for b in blocks if isinstance(b, Table)]
    assert [row[0] for row in table.rows] == ["三、本年度办理结果"] * 4
