"""An example of every /v1 route's request body and answer, as the OpenAPI document shows them (Swagger UI's
"Example Value", ReDoc's samples): made-up people (张三, 李四; ID numbers that are nobody's), pseudonyms and ids of the
right shape. tests/hub/web/test_openapi_docs.py checks each against its route's schema.

A route names its examples with ``answers(EXAMPLE, status)`` in its ``responses`` and ``body(EXAMPLE)`` as its
``openapi_extra``; FastAPI merges them into the operation beside the schema of its models."""

from __future__ import annotations

HEAD_REF, SPOUSE_REF, CHILD_REF = ("p_3f9a0c2e7b1d4e6f8a9b0c1d2e3f4a5b", "p_7c1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f",
                                   "p_0a1b2c3d4e5f60718293a4b5c6d7e8f9")
HOUSEHOLD_ID = "hh_6940505b300a0a82392fb271bd7bf651"
REQUEST_ID = "5b282d05a5c84e03b9d9128e2d41b6ad"
CLIENT_ID = "8d2f0b7e4c1a49e3a6b5c4d3e2f1a0b9"
AT = "2026-03-02T09:15:04.741693Z"
SHA = "4817e405f3bb9fd2ed87042c0be8b954fdfc8fe6b56adb0da1c8341b6eb3730b"
RULES = "anshan-2025-v3"


def answers(example, status: int = 200, description: str | None = None) -> dict:
    """A route's ``responses`` entry: ``example`` as the JSON answer of ``status``."""
    entry: dict = {"content": {"application/json": {"example": example}}}
    if description:
        entry["description"] = description
    return {status: entry}


def body(example) -> dict:
    """A route's ``openapi_extra``: ``example`` as its JSON request body."""
    return {"requestBody": {"content": {"application/json": {"example": example}}}}


def _reason(code: str, zh: str, en: str, **values) -> dict:
    return {"code": code, "text": f"{zh} / {en}", **({"values": values} if values else {})}


# -- requests ----------------------------------------------------------------------------------------------------
REQUEST_IN = {
    "purpose": "dibao", "case_ref": "MZ-210302-2026-0117",
    "sources": ["household", "tax", "social_insurance", "real_estate", "vehicles_vessels", "bank"],
    "members": [{"id_number": "21030219800101001X", "name": "张三", "relation": "head"},
                {"id_number": "210302198203150027", "name": "李四", "relation": "spouse"}],
    "authorization": {
        "valid_from": "2026-03-02T08:00:00+08:00", "valid_until": "2026-09-02T08:00:00+08:00",
        "recheck_interval_days": 90, "data_life_days": 30,
        "consents": [
            {"id_number": "21030219800101001X", "sources": ["household", "tax", "social_insurance", "real_estate",
                                                            "vehicles_vessels", "bank"],
             "evidence_sha256": SHA, "financial_consent": {"sources": ["bank"], "evidence_sha256": SHA}},
            {"id_number": "210302198203150027", "sources": ["household", "tax", "social_insurance", "real_estate",
                                                            "vehicles_vessels", "bank"],
             "evidence_sha256": SHA, "financial_consent": {"sources": ["bank"], "evidence_sha256": SHA}}]},
}
REQUEST_OUT = {
    "id": REQUEST_ID, "status": "running", "purpose": "dibao", "case_ref": "MZ-210302-2026-0117",
    "sources": ["household", "tax", "bank"], "household_id": None, "created_at": AT,
    "source_status": [{"source": "household", "status": "complete", "reason": None},
                      {"source": "tax", "status": "pending", "reason": None},
                      {"source": "bank", "status": "refused", "reason": "NO_FINANCIAL_CONSENT"}],
    "dag_run_id": None,
}
REQUESTS_OUT = {"items": [{"id": REQUEST_ID, "status": "published", "purpose": "dibao",
                           "case_ref": "MZ-210302-2026-0117", "kind": "application", "household_id": HOUSEHOLD_ID,
                           "created_at": AT}],
                "next_before": REQUEST_ID}
LOOKUP_IN = {"id_number": "21030219800101001X", "purpose": "dibao", "case_ref": "MZ-210302-2026-0117",
             "signed_form": {"media_type": "application/pdf", "content_base64": "JVBERi0xLjcK...(the whole form)"}}
LOOKUP_OUT = {"members": [
    {"id_number": "21030219800101001X", "name": "张三", "sex": "male", "birth_date": "1980-01-01",
     "relation": "head", "status": "normal"},
    {"id_number": "210302198203150027", "name": "李四", "sex": "female", "birth_date": "1982-03-15",
     "relation": "spouse", "status": "normal"}]}

# -- records -----------------------------------------------------------------------------------------------------
_SOURCE = {"reason": None, "batch_id": "4c824c7a5a955b719ce0bb566c5e08f2", "fetched_at": "2026-03-02T09:15:04.741693+00:00",
           "response_sha256": SHA, "validation_run": 31, "cross_source_run": 46}
_CAR = _reason("OWNS_VEHICLE", "拥有机动车 1 辆（非残疾人功能性补偿代步）",
               "owns 1 car(s) or truck(s) not adapted for a disability")
RECORD_CONTENT = {
    "schema": "hub.household_record/2", "household_ref": HOUSEHOLD_ID, "request_id": REQUEST_ID, "purpose": "dibao",
    "as_of": "2026-03-02T09:15:05.578017+00:00", "version": 1, "recorded_at": "2026-03-02T09:15:05.603006+00:00",
    "division": {"code": "210302", "name": "铁东区", "area_type": "urban"},
    "members": [
        {"person_ref": HEAD_REF, "id_number_masked": "2103**********001X", "name": "张三", "sex": "male",
         "birth_date": "1980-01-01", "age": 46, "relation": "head", "status": "normal", "address_code": "210302",
         "counted": True, "from": "household"},
        {"person_ref": SPOUSE_REF, "id_number_masked": "2103**********0027", "name": "李四", "sex": "female",
         "birth_date": "1982-03-15", "age": 43, "relation": "spouse", "status": "normal", "address_code": "210302",
         "counted": True, "from": "household"}],
    "facts": {
        "income": [{"person_ref": HEAD_REF, "category": "labour", "period": "2026-01", "amount": 1100.0,
                    "tax": 0.0, "payer": "91210300MA0XXXXX1K", "from": "tax"},
                   {"person_ref": SPOUSE_REF, "category": "pension", "period": "2026-01", "amount": 665.0,
                    "from": "social_insurance"}],
        "contributions": [], "provident_fund": [],
        "properties": [{"person_ref": HEAD_REF, "cert_no": "辽(2016)鞍山市不动产权第0000001号", "use": "residential",
                        "area": 54.77, "share": 1.0, "location_code": "210302", "acquired": "2015-02-13",
                        "mortgaged": False, "from": "real_estate"}],
        "market_entities": [],
        "vehicles_vessels": [{"person_ref": SPOUSE_REF, "kind": "vehicle", "plate": "辽C·X0000", "type": "car",
                              "purchase_price": 105000.0, "registered": "2020-06-27", "status": "normal",
                              "disability_adapted": False, "from": "vehicles_vessels"}],
        "deposits": [{"person_ref": HEAD_REF, "bank": "交通银行", "account": "6222********0766", "product": "demand",
                      "period": "2026-01", "balance": 2176.72, "from": "bank"}],
        "securities": [], "insurance_cash_value": [], "internet_finance": []},
    "discrepancies": [{"kind": "wages_vs_insurance_base", "person_ref": HEAD_REF, "sources": ["tax", "social_insurance"],
                       "periods": ["2025-11", "2025-12"],
                       **_reason("WAGES_VS_INSURANCE_BASE", "税务申报工资与社保缴费基数不符（2 个月）",
                                 "wages declared to tax do not match the social-insurance contribution base "
                                 "(2 months)")}],
    "assessment": {
        "rules": RULES,
        "standard": {"county": "210302", "area_type": "urban", "dibao_monthly": 800.0, "low_income_line": 1200.0},
        "window": {"from": "2025-02", "to": "2026-01", "months": 12},
        "members_counted": 2,
        "income": {"monthly_total": 1765.0, "monthly_per_capita": 882.5,
                   "monthly_by_category": {"wages": 0.0, "labour": 1100.0, "business": 0.0, "property_lease": 0.0,
                                           "pension": 665.0, "unemployment": 0.0}},
        "assets": {"deposits": 2176.72, "securities": 0.0, "insurance_cash_value": 0.0, "internet_finance": 0.0,
                   "financial_total": 2176.72, "financial_per_capita": 1088.36, "residential_properties": 1,
                   "residential_area_per_capita": 27.39, "cars": 1, "vessels": 0, "market_entities": 0},
        "asset_test": {"passes": False, "failures": [_CAR], "limit_per_capita": 19200.0, "incomplete_sources": []},
        "screening": {
            "dibao": {"answer": "no", "rules": RULES, "reasons": [
                _reason("INCOME_AT_OR_ABOVE_STANDARD", "人均月收入 882.50 元不低于低保标准 800.00 元",
                        "monthly income per capita 882.50 yuan is not below the dibao standard of 800.00 yuan",
                        per_capita=882.5, standard=800.0), _CAR]},
            "low_income": {"answer": "no", "rules": RULES, "reasons": [
                _reason("INCOME_IN_LOW_INCOME_BAND", "人均月收入 882.50 元在低保标准至 1.5 倍（800.00–1200.00 元）之间",
                        "monthly income per capita 882.50 yuan is within [800.00, 1200.00) yuan", per_capita=882.5,
                        low_income_line=1200.0), _CAR]},
            "tekun": {"answer": "no", "rules": RULES, "reasons": [
                _reason("HAS_SUPPORTER", "有劳动年龄成员有收入，可履行赡养、抚养或扶养义务",
                        "a working-age member with income can support the household")]},
            "expenditure_poverty": {"answer": "no", "rules": RULES, "reasons": [_CAR]}}},
    "sources": {"household": {"status": "complete", "authoritative_for": ["identity", "membership"], **_SOURCE},
                "tax": {"status": "complete", "authoritative_for": ["business", "labour", "property_lease", "wages"],
                        **_SOURCE},
                "bank": {**_SOURCE, "status": "incomplete", "reason": "TIMEOUT", "authoritative_for": ["deposits"],
                         "last_complete": {"record_version": 1, "recorded_at": "2025-12-01T10:00:00+00:00",
                                           "batch_id": "9c598c7a94665c079929c42d5b33be63",
                                           "fetched_at": "2025-12-01T09:59:58+00:00", "response_sha256": SHA,
                                           "validation_run": 12}}},
    "authority": {"membership": "household", "identity": "household", "wages": "tax", "labour": "tax",
                  "pension": "social_insurance", "deposits": "bank", "vehicles_vessels": "vehicles_vessels"},
}
RECORD_FIELDS = ["assessment", "authority", "discrepancies", "division", "facts", "members", "request_id", "sources"]
RECORD_OUT = {
    "household_id": HOUSEHOLD_ID, "version": 1, "as_of": "2026-03-02T09:15:05.578017Z",
    "recorded_at": "2026-03-02T09:15:05.603006Z",
    "completeness": {"household": "complete", "tax": "complete", "bank": "incomplete"},
    "content_sha256": SHA, "policy_rule": "civil-affairs-assistance", "fields": RECORD_FIELDS,
    "signature": "q1vR0m9dP3kq0sL9p8X2bq7QbHn3w0f5a6r3VYk0o5d3JzXn8m1K0p9s2QeW3r4t5y6u7i8o9p0a1s2d3f4g5hA",
    "content": RECORD_CONTENT,
}
POLICY_OUT = [{"name": "civil-affairs-assistance",
               "description": "民政部门审核审批社会救助：完整核对报告 / civil affairs deciding on assistance: the whole "
                              "record",
               "departments": ["MZ-*"], "purposes": ["dibao", "low_income", "tekun", "temporary"],
               "returns": RECORD_FIELDS},
              {"name": "medical-security", "description": "医保部门医疗救助：身份认定结论 / medical security: "
                                                          "eligibility answers only",
               "departments": ["YB-*"], "purposes": ["medical"],
               "returns": ["answers.dibao", "answers.low_income", "answers.tekun"]}]
SIGNING_KEY_OUT = {"algorithm": "Ed25519", "raw_base64url": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                   "pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
                          "-----END PUBLIC KEY-----\n"}
SUBSCRIPTION_IN = {"url": "https://mz.example.gov.cn/hub-webhook"}
SUBSCRIPTION_OUT = {"id": "3e5d7c9b1a2f4e6d8c0b9a8f7e6d5c4b", "url": "https://mz.example.gov.cn/hub-webhook",
                    "secret": "whsec_2b7e151628aed2a6abf7158809cf4f3c"}

# -- signing on the phone (码上办) and residents' applications (申请) --------------------------------------------
INVITATIONS_OUT = {"request_id": REQUEST_ID, "items": [
    {"member": 0, "relation": "head", "state": "signed", "minor": False, "expires_at": "2026-03-16T09:15:04Z",
     "link": "https://hub.example.gov.cn/m/s/G4ApIBclFgEwx-I8o79KUA"},
    {"member": 1, "relation": "spouse", "state": "pending", "minor": False, "expires_at": "2026-03-16T09:15:04Z",
     "link": "https://hub.example.gov.cn/m/s/x1MLUF5qLH0Obn9P4gtPXA"}]}
APPLICATION_ID = "c0ffee0b1a2f4e6d8c0b9a8f7e6d5c4b"
APPLICATION_OUT = {"id": APPLICATION_ID, "department": "MZ-210302", "programme": "dibao", "status": "pending",
                   "reason": None, "request_id": None, "created_at": AT,
                   "members": [{"id_number": "21030219800101001X", "name": "张三", "relation": "head"},
                               {"id_number": "210302198203150027", "name": "李四", "relation": "spouse"}]}
APPLICATIONS_OUT = {"items": [APPLICATION_OUT]}
DECISION_IN = {"decision": "accept", "case_ref": "MZ-210302-2026-0118"}
DECISION_OUT = {"id": APPLICATION_ID, "status": "accepted", "request_id": REQUEST_ID}

# -- assistance --------------------------------------------------------------------------------------------------
ASSISTANCE_IN = {"household_id": HOUSEHOLD_ID, "programme": "dibao", "granted_from": "2026-04-01",
                 "granted_until": None, "request_id": REQUEST_ID, "monthly_amount": "1268.00"}
ASSISTANCE_OUT = {"id": "6f1e2d3c4b5a69788796a5b4c3d2e1f0", "department": "MZ-210302", "programme": "dibao",
                  "granted_from": "2026-04-01", "granted_until": None, "monthly_amount": "1268.00", "reported_at": AT}
ASSISTANCE_LIST_OUT = {"household_id": HOUSEHOLD_ID, "grants": [
    ASSISTANCE_OUT, {**ASSISTANCE_OUT, "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "department": "YB-210302",
                     "programme": "medical", "granted_from": "2026-05-01", "granted_until": "2026-12-31"}]}

# -- validation (staff) ------------------------------------------------------------------------------------------
QUARANTINE_OUT = {
    "items": [{"id": 118, "source": "tax", "request_id": REQUEST_ID, "batch_id": "045094231b445d9094eb0f0ce04d5b03",
               "row_no": 7, "person_ref": HEAD_REF, "expectation": "expect_column_values_to_be_valid_id_number",
               "reason": "身份证号校验位错误 / the ID number's check character is wrong", "validation_run_id": 25,
               "data_docs": "/console/staff/validation-runs/25/docs", "created_at": AT}],
    "by_check": {"expect_column_values_to_be_valid_id_number": 3, "expect_column_values_to_not_be_null": 1},
    "next_before": 118}
VALIDATION_RUNS_OUT = {
    "items": [{"id": 25, "suite": "tax_suite", "source": "tax", "request_id": REQUEST_ID,
               "batch_id": "045094231b445d9094eb0f0ce04d5b03", "run_id": "manual__2026-03-02T09:15:04",
               "success": False, "rows": 40, "rows_failed": 1,
               "results": [{"name": "id_number_valid", "expectation": "expect_column_values_to_be_valid_id_number",
                            "column": "id_number", "success": False, "rows_failing": 1}],
               "data_docs": "/console/staff/validation-runs/25/docs", "created_at": AT}],
    "next_before": 25}
SOURCES_OUT = {"since": "2026-02-23T09:15:00Z", "items": [
    {"source": "tax", "up": True, "latency_ms": 42.5, "checked_at": AT, "last_complete_fetch": AT,
     "validation_runs": 120, "validation_pass_rate": 0.975, "rows_quarantined": 3},
    {"source": "bank", "up": False, "latency_ms": None, "checked_at": AT, "last_complete_fetch": "2026-02-28T16:02:11Z",
     "validation_runs": 80, "validation_pass_rate": 1.0, "rows_quarantined": 0}]}
WAITING_RECHECKS_OUT = {"count": 1, "since": "2026-03-01T02:00:00Z", "items": [
    {"application_id": REQUEST_ID, "household_ref": HOUSEHOLD_ID, "attempts": 3, "since": "2026-03-01T02:00:00Z",
     "last": "2026-03-01T07:00:00Z", "next_due": "2026-03-01T23:00:00Z", "reasons": ["bank:TIMEOUT"]}]}

# -- admin -------------------------------------------------------------------------------------------------------
CLIENT_IN = {"name": "铁东区民政局 社会救助科", "role": "department", "department": "MZ-210302"}
CLIENT_OUT = {"id": CLIENT_ID, "name": "铁东区民政局 社会救助科", "role": "department", "department": "MZ-210302",
              "active": True, "created_at": AT}
NEW_CLIENT_OUT = {**CLIENT_OUT, "token": "hub_Jq3v9Xb2kLm8Rt5Yw1Zc4Nd7Pf0Gh6Sx"}
CLIENTS_OUT = {"items": [CLIENT_OUT], "next_before": CLIENT_ID}

# -- audit -------------------------------------------------------------------------------------------------------
LEDGER_ENTRIES_OUT = {"items": [
    {"seq": 1042, "kind": "record.read", "recorded_at": AT,
     "payload": {"client_id": CLIENT_ID, "department": "MZ-210302", "purpose": "dibao", "household_ref": HOUSEHOLD_ID,
                 "version": 1, "basis": f"request:{REQUEST_ID}", "policy_rule": "civil-affairs-assistance",
                 "fields": RECORD_FIELDS}}],
    "next_before": 1042}
CHECKPOINT_OUT = {"intact": True, "state": "amber", "problems": [], "events": 1042, "latest_seq": 1042,
                  "entries_after_checkpoint": 12,
                  "checkpoint": {"number": 41, "size": 1030, "root_sha256": SHA, "created_at": AT,
                                 "note": "hub ledger\n1030\nSBe0bNF3Yd3VNx8G0Gq1rBqZ1X6h1K7d2x3c4v5b6n8=\n\n— hub ..."}}
PROOF_OUT = {"seq": 1000, "kind": "record.read", "leaf_index": 999, "tree_size": 1030,
             "leaf_hash": "mZ3oQ6Y2Jg2b0y4x7m8n9q0w1e2r3t4y5u6i7o8p9a0=",
             "proof": ["3q2+7w==...", "yv66vg==..."], "root": "SBe0bNF3Yd3VNx8G0Gq1rBqZ1X6h1K7d2x3c4v5b6n8=",
             "checkpoint": "hub ledger\n1030\nSBe0bNF3Yd3VNx8G0Gq1rBqZ1X6h1K7d2x3c4v5b6n8=\n\n— hub ...",
             "entry": '{"kind":"record.read","payload":{...},"recorded_at":"2026-03-02T09:15:04.741693+00:00"}'}
PERSON_IN = {"id_number": "21030219800101001X"}
PERSON_REF_OUT = {"person_ref": HEAD_REF}
UNUSUAL_READS_OUT = {"items": [{"seq": 1043, "at": "2026-03-02T23:41:00Z", "kind": "off_hours", "client_id": CLIENT_ID,
                                "department": "MZ-210302", "household_id": HOUSEHOLD_ID,
                                "detail": "a record read at 07:41 Beijing time, outside office hours"}]}
