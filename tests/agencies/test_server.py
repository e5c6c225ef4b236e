from __future__ import annotations

import pytest
import requests

from agencies.population import household
from agencies.server import AgencyServer, UnknownFaultProfile


def test_index_lists_each_source_and_its_base_url(agencies):
    index = requests.get(agencies.url, timeout=5).json()
    assert [s["key"] for s in index["sources"]] == ["household"]
    assert index["sources"][0]["base_url"].startswith(agencies.url)


def test_requests_without_an_authorization_reference_are_refused_and_counted(agencies):
    url = agencies.base_url("household") + "api/v1/persons/query"
    ids = [m.id_number for m in household(7, 1).members]
    assert requests.post(url, json={"sfzhList": ids}, timeout=5).status_code == 403
    ok = requests.post(url, json={"sfzhList": ids}, headers={"X-Auth-Ref": "r"}, timeout=5)
    assert ok.status_code == 200 and len(ok.json()["data"]) == len(ids)
    assert requests.post(url, data=b"\xff\xfe", headers={"X-Auth-Ref": "r"}, timeout=5).status_code == 400
    too_many = requests.post(url, json={"sfzhList": ids * 101}, headers={"X-Auth-Ref": "r"}, timeout=5)
    assert too_many.status_code == 400
    assert agencies.stats()["household"] == {"requests": 4, "served": 1, "refused": 3, "rows": len(ids)}


def test_dirty_profile_corrupts_some_rows(dirty_agencies):
    url = dirty_agencies.base_url("household") + "api/v1/persons/query"
    ids = [m.id_number for k in range(20) for m in household(7, k).members]
    data = requests.post(url, json={"sfzhList": ids}, headers={"X-Auth-Ref": "r"}, timeout=5).json()["data"]
    assert any(r["sfzh"] not in ids for r in data)
    assert any(r["dzbm"] == "999999" for r in data)


def test_unknown_fault_profile_is_a_clear_error():
    with pytest.raises(UnknownFaultProfile, match="known: none, dirty"):
        AgencyServer(households=1, faults="chaos")
