"""Settings: every HUB_* variable read in one place, with its default; a value that cannot be used is an error naming
the variable and never quoting the value; the consent receipt's controller and the hub's region and platform code
come from them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select

from core.crypto import canonical_json, sha256_hex
from core.settings import DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAME_EN, MIN_LOG_RETENTION_DAYS, settings
from core.store import Authorization, LedgerEvent, Request, session
from hub.stages.intake import create_request
from tests.support.households import sample

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "consent" / "receipt.schema.json").read_text())
REGION = ("HUB_REGION_CODE", "HUB_DCI_ID", "HUB_CONTROLLER_NAME", "HUB_CONTROLLER_NAME_EN")


@pytest.fixture
def clean(monkeypatch):
    for name in REGION:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _refused(monkeypatch, variable: str, value: str, read) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=f"^{variable}: ") as err:
        read(settings())
    assert value.strip() not in str(err.value)


def test_the_region_controller_and_platform_code_default_to_anshans(clean):
    cfg = settings()
    assert cfg.region_code == "210300" and cfg.dci_id == "HUB-210300"
    assert cfg.controller == {"name": "鞍山市社会救助家庭经济状况核对中心",
                              "name_en": "Anshan social assistance verification centre"}


def test_another_region_gets_its_own_platform_code_unless_one_is_given(clean):
    clean.setenv("HUB_REGION_CODE", "211300")
    assert settings().dci_id == "HUB-211300"
    clean.setenv("HUB_DCI_ID", " FED-LN-2 ")
    assert settings().dci_id == "FED-LN-2"


@pytest.mark.parametrize("variable, value, read", [
    ("HUB_REGION_CODE", "21030X", lambda c: c.region_code),
    ("HUB_REGION_CODE", "021030", lambda c: c.region_code),
    ("HUB_REGION_CODE", "２１０３００", lambda c: c.region_code),  # full-width digits
    ("HUB_REGION_CODE", "Anshan", lambda c: c.dci_id),  # the platform code's default rests on it
    ("HUB_DCI_ID", "hub-210300", lambda c: c.dci_id),
    ("HUB_DCI_ID", "CITY-210300", lambda c: c.dci_id),
    ("HUB_CONTROLLER_NAME", "核对中心\n鞍山", lambda c: c.controller),
    ("HUB_CONTROLLER_NAME", "核" * 129, lambda c: c.controller),
    ("HUB_CONTROLLER_NAME_EN", "centre\u202eertnec", lambda c: c.controller),  # a bidirectional override
    ("HUB_AGENCIES_HANG_S", "soon", lambda c: c.agencies_hang_s),
    ("HUB_AGENCIES_HANG_S", "-1", lambda c: c.agencies_hang_s),
    ("HUB_RECHECK_LEASE_S", "-5", lambda c: c.recheck_lease_s),
    ("HUB_RECHECK_LEASE_S", "nan", lambda c: c.recheck_lease_s),
    ("HUB_AGENCIES_HANG_S", "nan", lambda c: c.agencies_hang_s),
    ("HUB_DEFAULT_DATA_LIFE_DAYS", "3651", lambda c: c.default_data_life_days),
    ("HUB_LOOKUP_PER_HOUR", "many", lambda c: c.lookup_per_hour),
    ("HUB_API_MAX_BODY_BYTES", "512", lambda c: c.api_max_body_bytes),
])
def test_a_bad_value_is_an_error_naming_the_variable_only(clean, variable, value, read):
    _refused(clean, variable, value, read)


def test_a_blank_value_means_the_default(clean):
    for name in (*REGION, "HUB_AGENCIES_HANG_S"):
        clean.setenv(name, "  ")
    cfg = settings()
    assert (cfg.region_code, cfg.controller["name"], cfg.agencies_hang_s) == ("210300", DEFAULT_CONTROLLER_NAME, 30.0)
    clean.setenv("HUB_DCI_ID", "  ")  # as before the variable moved here: blank is not a platform code
    with pytest.raises(ValueError, match="^HUB_DCI_ID: "):
        cfg.dci_id


def test_log_retention_never_falls_below_the_law(monkeypatch):
    for value, days in (("30", MIN_LOG_RETENTION_DAYS), ("365", 365), ("half a year", MIN_LOG_RETENTION_DAYS)):
        monkeypatch.setenv("HUB_LOG_RETENTION_DAYS", value)
        assert settings().log_retention_days == days
    monkeypatch.delenv("HUB_LOG_RETENTION_DAYS")
    assert settings().log_retention_days == MIN_LOG_RETENTION_DAYS


def test_optional_variables_are_none_when_unset_and_the_database_url_says_whether_it_was_given(monkeypatch):
    for name in ("HUB_DCI_PEERS", "HUB_DCI_URL", "HUB_AIRFLOW_URL", "HUB_ACCESS_POLICY", "HUB_DATABASE_ADMIN_URL",
                 "HUB_DISTRIBUTED_ADMIN_URL", "HUB_DISTRIBUTED_REDIS_URL", "HUB_AIRFLOW_USER", "HUB_ENV",
                 "HUB_API_RATE", "HUB_LEDGER_ORIGIN", "HUB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    cfg = settings()
    assert (cfg.dci_peers, cfg.dci_url, cfg.airflow_url, cfg.access_policy, cfg.database_admin_url,
            cfg.distributed_admin_url, cfg.distributed_redis_url, cfg.airflow_login) == (None,) * 8
    assert (cfg.environment, cfg.api_rate, cfg.ledger_origin) == ("development", "20/60",
                                                                   "anshan.verification-hub/ledger")
    assert not cfg.database_url_given and cfg.database_url.startswith("sqlite:///")
    monkeypatch.setenv("HUB_ENV", " Production ")
    monkeypatch.setenv("HUB_AIRFLOW_USER", "admin")
    assert settings().environment == "production" and settings().airflow_login is None  # a login needs both
    monkeypatch.setenv("HUB_AIRFLOW_PASSWORD", "x")
    assert settings().airflow_login == ("admin", "x")
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql+psycopg://hub@db/hub")
    assert settings().database_url_given and settings().database_url == "postgresql+psycopg://hub@db/hub"


def _receipt(request_id: str) -> tuple[dict, bool]:
    """The stored receipt of the request's authorization, and whether the ledger vouches for it as stored."""
    with session() as s:
        auth = s.scalars(select(Authorization).where(Authorization.request_id == request_id)).one()
        logged = [e.payload["receipt_sha256"] for e in s.scalars(select(LedgerEvent).where(
            LedgerEvent.kind == "authorization.granted")) if e.payload.get("authorization_id") == auth.id]
        return auth.receipt, logged == [sha256_hex(canonical_json(auth.receipt))]


def test_a_new_receipt_names_the_controller_the_settings_name(clean, own_store):
    receipt, vouched = _receipt(create_request(sample(3)))
    assert receipt["controller"] == {"name": DEFAULT_CONTROLLER_NAME, "name_en": DEFAULT_CONTROLLER_NAME_EN}
    assert vouched
    clean.setenv("HUB_CONTROLLER_NAME", "大连市社会救助家庭经济状况核对中心")
    clean.setenv("HUB_CONTROLLER_NAME_EN", "Dalian social assistance verification centre")
    receipt, vouched = _receipt(create_request(sample(4)))
    assert receipt["controller"] == {"name": "大连市社会救助家庭经济状况核对中心",
                                     "name_en": "Dalian social assistance verification centre"}
    assert vouched  # the ledger vouches for the receipt as stored, controller included
    jsonschema.validate(receipt, SCHEMA)


def test_a_bad_controller_name_stores_no_request(clean, own_store):
    doc = sample(5)
    clean.setenv("HUB_CONTROLLER_NAME", "centre\x07")
    with pytest.raises(ValueError, match="^HUB_CONTROLLER_NAME: "):
        create_request(doc)
    with session() as s:
        assert s.scalars(select(Request).where(Request.case_ref == doc["case_ref"])).first() is None
