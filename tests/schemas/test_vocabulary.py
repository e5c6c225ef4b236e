"""The vocabulary is held once: every code table, contract, suite and generated row speaks it, and every term has
its names in Chinese and English."""

from __future__ import annotations

import pytest

from agencies.population import households
from agencies.requests import sample_request
from connectors.registry import FEDERATED
from connectors.registry import SOURCES as CONNECTORS
from hub.stages.intake import check_request
from schemas import codes, vocabulary as v
from schemas.contracts import SPECS
from schemas.suite import has_suite


def test_every_term_has_a_chinese_and_an_english_name():
    for names in (v.PURPOSE_NAMES, v.PROGRAMME_NAMES, v.ANSWER_NAMES, v.RELATION_NAMES, v.SEX_NAMES,
                  v.STATUS_NAMES, v.SOURCE_NAMES):
        for code, (zh, en) in names.items():
            assert zh.strip() and en.strip() and zh != en, (code, zh, en)
    assert v.PURPOSES["dibao"] == "最低生活保障 / minimum living guarantee"


def test_the_sources_are_the_design_s_and_the_financial_ones_need_their_own_consent():
    assert v.AGENCY_SOURCES == ("household", "tax", "social_insurance", "provident_fund", "real_estate",
                                "market_entity", "vehicles_vessels", "bank", "securities", "commercial_insurance",
                                "internet_finance")
    assert v.FEDERATED_SOURCES == ("remote_registry",) and v.SOURCE_KEYS == (*v.AGENCY_SOURCES, *v.FEDERATED_SOURCES)
    assert v.FINANCIAL_SOURCES == {"bank", "securities", "commercial_insurance", "internet_finance"}


def test_every_source_has_a_contract_a_connector_and_a_suite():
    assert tuple(SPECS) == v.AGENCY_SOURCES
    assert tuple(CONNECTORS) == v.AGENCY_SOURCES and FEDERATED == v.FEDERATED_SOURCES
    assert all(has_suite(k) for k in v.SOURCE_KEYS)


def test_the_programmes_screened_are_purposes_where_assistance_is_granted():
    assert v.PROGRAMMES == ("dibao", "low_income", "tekun", "expenditure_poverty")
    assert v.PROGRAMME_OF_PURPOSE == {"dibao": "dibao", "low_income": "low_income", "tekun": "tekun"}
    assert v.ANSWERS == (v.YES, v.NO, v.REVIEW) == ("yes", "no", "needs_review")


def test_the_registration_code_tables_name_terms_of_the_vocabulary():
    assert set(codes.RELATIONS.values()) == set(v.RELATIONS) - {"child"}  # registration always says son or daughter
    assert tuple(codes.PERSON_STATUS.values()) == v.PERSON_STATUSES
    assert tuple(codes.SEX.values()) == v.SEXES
    assert SPECS["household"].codes["relation"] == codes.RELATION_CODES


def test_one_set_of_relations_for_requests_and_registration():
    """The relations of requests and of generated registration rows are one set: a request naming a child
    without saying son or daughter is accepted, as every generated member's relation is."""
    relations = {m.relation for h in households(11, 60) for m in h.members}
    assert relations <= set(v.RELATIONS)
    doc = sample_request(seed=7, households=50, k=3)
    assert check_request(doc) == []
    doc["members"][-1]["relation"] = "child"
    assert check_request(doc) == []


@pytest.mark.parametrize("names, codes_", [(v.REQUEST_STATUS_NAMES, v.REQUEST_STATUSES),
                                           (v.SOURCE_STATUS_NAMES, v.SOURCE_STATUSES),
                                           (v.PERSON_STATUS_NAMES, v.PERSON_STATUSES)])
def test_the_console_labels_every_status(names, codes_):
    assert tuple(names) == codes_ and set(codes_) <= set(v.STATUS_NAMES)
