"""Organisation-name rules, one behaviour per row (the measured numbers are in
``tests/test_orgnames_eval.py``)."""

from __future__ import annotations

import pytest

from models.orgnames import head_of, parse_org, same_org, similarity, text_terms


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        # legal forms, punctuation, spacing, width and script
        ("Acme Robotics Co., Ltd.", "ACME ROBOTICS LIMITED", True),
        ("Acme Robotics Corp.,Ltd", "Acme Robotics Corporation Limited", True),
        ("Ａｃｍｅ Robotics", "Acme Robotics", True),
        ("Deep Mind", "DeepMind", True),
        ("北京某某科技有限公司", "北京某某科技股份有限公司", True),
        ("北京某某科技有限公司上海分公司", "北京某某科技有限公司", True),
        ("華為技術有限公司", "华为技术有限公司", True),
        # a brand and its principal company; a parenthesised place marks a subsidiary
        ("Acme", "Beijing Acme Technology Co., Ltd.", True),
        ("Acme", "Acme Cloud Co., Ltd.", False),
        ("Acme Robotics", "Acme Robotics (Shanghai) Co., Ltd.", False),
        ("Acme Robotics Co., Ltd.", "Acme Robotics USA Inc.", False),
        ("华为", "华为技术有限公司", True),
        ("华为", "华为终端有限公司", False),
        # numbers must agree
        ("CETC 13", "CETC-13", True),
        ("CETC 13", "CETC 14", False),
        ("中国电科第十三研究所", "中国电科13所", True),
        ("Institute 13", "Institute", False),
        # typing slips where safe, never for short names or acronyms
        ("Cambricorn", "Cambricon", True),
        ("Zhipu", "Zhihu", False),
        ("YMTC", "YMCA", False),
        ("寒五纪", "寒武纪", True),
        ("海光", "海尔", False),
        # acronyms of the words, and parenthesised aliases
        ("YMTC", "Yangtze Memory Technologies Co., Ltd.", True),
        ("CETC", "China Electronics Technology Group Corporation", True),
        ("CEC", "China Electronics Technology Group Corporation", False),
        (
            "CETC 13",
            "China Electronics Technology Group Corporation 13th Research Institute (CETC 13)",
            True,
        ),
        # an address after the name is not part of it; a shared address is not identity
        ("Acme Group", "Acme Group Co., Ltd., No. 5 Main Road, Jinan, China", True),
        ("Acme Group", "Acme Computer Co., Ltd., No. 5 Main Road, Jinan, China", False),
        # romanised Chinese against a pinyin English name
        ("智谱华章", "Beijing Zhipu Huazhang Technology Co., Ltd.", True),
        ("哈尔滨工程大学", "Harbin Engineering University", True),
        ("华为", "Huawei Technologies Co., Ltd.", True),
        ("", "Acme", False),
        # known organisations (models/data/known_orgs.json): brands that are not pinyin, former
        # names, institutes by their descriptive names; and never one known one for another
        ("寒武纪", "Cambricon Technologies Corporation Limited", True),
        ("DeepSeek", "杭州深度求索人工智能基础技术研究有限公司", True),
        ("Spreadtrum", "紫光展锐", True),
        ("CETC 38", "East China Research Institute of Electronic Engineering", True),
        ("中国电科14所", "Nanjing Research Institute of Electronics Technology", True),
        ("CETC 14", "Nanjing Research Institute of Electronic Engineering", False),
        ("长鑫存储", "Yangtze Memory Technologies Co., Ltd.", False),
        ("Inspur Electronic Information Industry Co., Ltd.", "Inspur Group", False),
        # a known one's names, romanised, reach a name the file does not list
        ("Yuezhi Anmian", "Moonshot AI", True),
        # but not through its brand: a company of the same brand in another city is another
        ("Zhipu AI", "Chengdu Zhipu Huazhang Technology Co., Ltd.", False),
    ],
)
def test_same_org(a: str, b: str, same: bool) -> None:
    assert same_org(a, b) is same
    assert same_org(b, a) is same


def test_bis_question_mark_for_an_apostrophe_is_read_as_one() -> None:
    assert same_org("Xi?an Tianxuan Microelectronics", "Xi'an Tianxuan Microelectronics")


def test_head_keeps_legal_form_fragments_and_drops_the_address() -> None:
    assert head_of("Acme Co., Ltd., No. 1 Road, Jinan") == "Acme Co., Ltd."
    assert parse_org("Acme Co., Ltd., No. 1 Road, Jinan").tokens == ("acme",)


def test_similarity_ranks_a_closer_name_higher() -> None:
    assert similarity("Huawei", "Huawei Technologies Co., Ltd.") > similarity("Huawei", "Hua Xin")


def test_text_terms_add_the_name_without_its_legal_form() -> None:
    assert text_terms("Beijing Zhipu Huazhang Technology Co., Ltd.") == (
        "Beijing Zhipu Huazhang Technology Co., Ltd.",
        "beijing zhipu huazhang technology",
    )
    assert text_terms("智谱") == ("智谱",)


def test_the_known_organisations_file_names_each_form_once() -> None:
    """A name two organisations share would identify neither: the file must not have one."""
    from collections import Counter

    from models.orgnames import forms, shipped_known

    owners: Counter[str] = Counter()
    for names in shipped_known().names:
        owners.update({f.compact for name in names for f in forms(name) if len(f.compact) >= 2})
    assert [key for key, n in owners.items() if n > 1] == []
    assert all(len(names) >= 2 for names in shipped_known().names)  # each says what it joins


def test_names_editors_add_join_the_organisation_they_share_a_name_with() -> None:
    from models.orgnames import EditorsNames, known_with, same_org, shipped_known

    nettrix = "Nettrix Information Industry (Beijing) Co., Ltd."
    assert not same_org("宁畅", nettrix)
    known = known_with(
        EditorsNames(
            (
                ("宁畅", "Nettrix"),  # an organisation of its own
                ("Nettrix", nettrix),  # shares "Nettrix": joins it
                ("寒武纪", "寒武纪科技"),  # joins the shipped Cambricon
                ("海光", "寒武纪科技"),  # names two organisations: left out
            )
        )
    )
    # and blurs neither: 海光 still names Hygon alone (a group kept beside both would share
    # its forms with them, and a shared form names nobody)
    assert known.known_as("海光") == shipped_known().known_as("海光")
    assert same_org("宁畅", nettrix, known)
    assert same_org("寒武纪科技", "Cambricon Technologies", known)
    assert not same_org("海光", "Cambricon Technologies", known)
    assert not same_org("海光", "寒武纪", known)
    assert len(known.names) == len(shipped_known().names) + 1
    assert not same_org("宁畅", nettrix)  # the shipped list itself is unchanged


def test_a_name_editors_drop_names_no_organisation_and_the_rest_still_find_each_other() -> None:
    from models.orgnames import EditorsNames, known_with, same_org, shipped_known

    assert same_org("海光", "Hygon")
    dropped = known_with(EditorsNames(dropped=("海光",)))
    assert dropped.known_as("海光") == frozenset()
    assert not same_org("海光", "Hygon Information Technology", dropped)
    hygon = shipped_known().known_as("Hygon")
    assert dropped.known_as("Hygon") == hygon  # the organisation keeps its place and names
    assert "海光" not in dropped.names[next(iter(hygon))]
    assert "海光信息" in dropped.names[next(iter(hygon))]
    # a dropped name an editor had added goes too; what else the group said stays
    both = known_with(EditorsNames((("宁畅", "Nettrix", "宁畅科技"),), dropped=("宁畅科技",)))
    assert same_org("宁畅", "Nettrix", both)
    assert not both.known_as("宁畅科技")
    assert known_with(EditorsNames()) is shipped_known()
