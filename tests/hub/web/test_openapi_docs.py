"""The API's description: the record's content typed in the OpenAPI document (its parts, their fields, described),
an example of every /v1 route's answer and request body that holds to the route's own schema, a real record from
the pipeline that holds to the model and to the document, and /docs and /redoc served without any outside host
(their browser test: tests/hub/web/console/test_api_docs.py)."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from hub.services.clients import create_client
from hub.stages.pipeline import run_inline
from hub.stages.records import verify_record
from hub.web import examples
from hub.web.app import create_app
from hub.web.models import RecordContent, RecordOut
from tests.support.households import ALL_SOURCES, household_of, sample


@pytest.fixture(scope="module")
def api():
    return TestClient(create_app())


@pytest.fixture(scope="module")
def spec(api):
    return api.get("/openapi.json").json()


def _validator(spec: dict, schema: dict) -> Draft202012Validator:
    """A validator of ``schema`` whose $refs (#/components/schemas/...) resolve in the document."""
    return Draft202012Validator({**schema, "components": spec["components"]})


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        if path.startswith("/v1/"):
            for method, op in ops.items():
                yield f"{method.upper()} {path}", op


def test_the_record_content_is_typed_with_its_parts_and_their_fields(spec):
    record = spec["paths"]["/v1/households/{household_id}/record"]["get"]["responses"]["200"]
    out = _resolve(spec, record["content"]["application/json"]["schema"])
    assert _resolve(spec, out["properties"]["content"])["title"] == "RecordContent"
    content = _resolve(spec, out["properties"]["content"])
    # the identity is always there; every part the access policy may cut is optional
    assert set(content["required"]) == {"schema", "household_ref", "purpose", "as_of", "version", "recorded_at"}
    assert {"division", "members", "facts", "discrepancies", "assessment", "sources", "authority",
            "answers"} <= set(content["properties"])

    def props(name: str) -> dict:
        return spec["components"]["schemas"][name]["properties"]

    assert {"person_ref", "id_number_masked", "name", "relation", "status", "counted"} <= set(props("RecordMember"))
    assert "id_number" not in props("RecordMember")  # only masked
    assert {"income", "assets", "asset_test", "screening", "standard", "window"} <= set(props("RecordAssessment"))
    assert set(props("RecordScreenings")) == {"dibao", "low_income", "tekun", "expenditure_poverty"}
    assert props("RecordScreening")["answer"]["enum"] == ["yes", "no", "needs_review"]
    assert {"code", "text", "values"} <= set(props("RecordReason"))
    assert {"status", "reason", "last_complete", "fetched_at"} <= set(props("RecordSource"))
    assert {"vehicles_vessels", "properties", "market_entities", "income", "deposits"} <= set(props("RecordFacts"))
    assert {"plate", "kind", "type"} <= set(props("VehicleVesselFact"))
    # described in words, and open to parts the hub adds later (their fields are returned before described)
    assert all(props("RecordMember")[k].get("description") for k in ("id_number_masked", "counted", "person_ref"))
    assert all(spec["components"]["schemas"][n].get("additionalProperties", True) is not False
               for n in ("RecordContent", "RecordReason", "RecordAssessment", "RecordMember"))


def test_every_v1_operation_has_an_example_answer_and_body_that_hold_to_its_schema(spec):
    seen = 0
    for name, op in _operations(spec):
        answers = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert answers, name
        for code, answer in answers.items():
            media = answer["content"]["application/json"]
            assert "example" in media, f"{name}: no example of its {code} answer"
            errors = list(_validator(spec, media["schema"]).iter_errors(media["example"]))
            assert not errors, f"{name} {code}: {errors[0].message} at {list(errors[0].absolute_path)}"
        if "requestBody" in op:
            media = op["requestBody"]["content"]["application/json"]
            assert "example" in media, f"{name}: no example of its body"
            errors = list(_validator(spec, media["schema"]).iter_errors(media["example"]))
            assert not errors, f"{name} body: {errors[0].message} at {list(errors[0].absolute_path)}"
        seen += 1
    assert seen >= 23


def test_the_record_example_is_a_record_the_models_read_as_such(spec):
    out = RecordOut.model_validate(examples.RECORD_OUT)
    assert out.content.members[0].id_number_masked == "2103**********001X"
    assert out.content.assessment.screening.dibao.answer == "no"
    assert out.content.facts.vehicles_vessels[0].plate
    assert not out.content.model_extra  # every part of the example is described
    for part in ("division", "members", "facts", "discrepancies", "assessment", "sources", "authority"):
        assert part in examples.RECORD_CONTENT
    # no ID number in full, anywhere in the example
    assert not re.search(r"\d{17}[\dX]", json.dumps(examples.RECORD_OUT["content"], ensure_ascii=False))


def test_fields_the_hub_adds_later_do_not_break_the_model():
    """Another part of the hub may add facts to a reason (e.g. which car) before this model describes them."""
    content = json.loads(json.dumps(examples.RECORD_CONTENT))
    reasons = content["assessment"]["screening"]["dibao"]["reasons"]
    reasons[1]["facts"] = [{"plate": "辽C·X0000", "person_ref": examples.SPOUSE_REF}]
    content["members"][0]["disability"] = None
    parsed = RecordContent.model_validate(content)
    assert parsed.assessment.screening.dibao.reasons[1].model_extra == {"facts": reasons[1]["facts"]}


@pytest.fixture(scope="module")
def department():
    _, mz = create_client("docs MZ", "department", "MZ-210302")
    _, yb = create_client("docs YB", "department", "YB-210302")
    return {"MZ": {"Authorization": f"Bearer {mz}"}, "YB": {"Authorization": f"Bearer {yb}"}}


def _published(api, headers, doc) -> str:
    created = api.post("/v1/requests", json=doc, headers=headers)
    assert created.status_code == 201, created.text
    assert run_inline(created.json()["id"]).status == "published"
    return api.get(f"/v1/requests/{created.json()['id']}", headers=headers).json()["household_id"]


def test_a_real_record_from_the_pipeline_holds_to_the_model_and_the_document(api, spec, department, agencies):
    record_schema = spec["paths"]["/v1/households/{household_id}/record"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    k = household_of("hides_car")
    hh = _published(api, department["MZ"], sample(k, sources=list(ALL_SOURCES)))
    resp = api.get(f"/v1/households/{hh}/record", params={"purpose": "dibao"}, headers=department["MZ"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert verify_record(body["content"], body["signature"])  # returned as signed: nothing dropped or added
    errors = list(_validator(spec, record_schema).iter_errors(body))
    assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"
    content = RecordContent.model_validate(body["content"])
    assert content.members and all(re.fullmatch(r"\d{4}\*{10}[\dX]{4}", m.id_number_masked) for m in content.members)
    assert content.assessment.assets.cars >= 1 and content.facts.vehicles_vessels
    assert {s for s in content.sources} == set(ALL_SOURCES)
    assert content.assessment.screening.dibao.answer in ("yes", "no", "needs_review")

    # an answers-only rule (medical security): the identity and the answers, and the same model reads it
    hh_yb = _published(api, department["YB"], sample(k, sources=["household"], purpose="medical",
                                                     department="YB-210302"))
    assert hh_yb == hh
    answers = api.get(f"/v1/households/{hh}/record", params={"purpose": "medical"}, headers=department["YB"]).json()
    assert not list(_validator(spec, record_schema).iter_errors(answers))
    only = RecordContent.model_validate(answers["content"])
    assert only.members is None and set(only.answers) == {"dibao", "low_income", "tekun"}
