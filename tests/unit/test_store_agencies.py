"""Agency identity: one body across years and carriers."""

from __future__ import annotations

import pytest

from shared.store.agencies import infer_level, normalise_agency_name, region_code_from_site_id


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("郑庄子镇", "郑庄子镇人民政府"),
        ("郑庄子镇人民政府", "郑庄子镇 人民政府"),
        ("城郊乡政府", "城郊乡人民政府"),
        ("平潭综合实验区", "平潭综合实验区管委会"),
        ("某某街道", "某某街道办事处"),
        ("（某县）财政局", "(某县)财政局"),
    ],
)
def test_spellings_of_one_body_share_a_key(a, b):
    assert normalise_agency_name(a) == normalise_agency_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("平潭综合实验区", "平潭综合实验区财政金融局"),
        ("固镇县城市管理局", "固镇县"),
        ("丰城市段潭乡人民政府", "段潭乡人民政府"),  # without a region we do not guess the parent
    ],
)
def test_different_bodies_keep_different_keys(a, b):
    assert normalise_agency_name(a) != normalise_agency_name(b)


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("城郊乡人民政府", "township"),
        ("郑庄子镇", "township"),
        ("固镇县城市管理局", "department"),
        ("平潭综合实验区财政金融局", "department"),
        ("平潭综合实验区", "government"),
        ("上海市人民政府", "government"),
    ],
)
def test_level_from_the_name(name, level):
    assert infer_level(name) == level


def test_region_code_is_the_first_six_digits_of_the_site_id_code():
    assert region_code_from_site_id("3501280001") == "350128"
    assert region_code_from_site_id("bm01000001") == ""
    assert region_code_from_site_id(None) == ""
