"""The store and the pipeline over it, on SQLite and on PostgreSQL (every test runs on both)."""

from __future__ import annotations

import contextlib
import uuid

import threading

import pytest
from sqlalchemy import func, select, text

from agencies.population import household_in_population
from consent.gate import Reason
from core.crypto import DecryptionFailed, keyring
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from hub.stages.records import publish_record, record_of_request, verify_record
from core.store import (
    SCHEMA_REVISION,
    ConsentDecision,
    HouseholdRecord,
    LedgerEvent,
    Request,
    aad_member,
    engine,
    session,
    utcnow,
)
from tests.support.households import sample

pytestmark = pytest.mark.usefixtures("database")


def _count(model, *where) -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_schema_is_at_head(database):
    with engine().connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISION
    assert engine().dialect.name == database


def test_the_migrations_build_exactly_the_models(database):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store import Base

    with engine().connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []


def test_no_index_is_the_beginning_of_another_index_or_unique_constraint(database):
    """An index on the first columns of another answers nothing the other does not, and every insert writes it:
    at a province's size source_rows.batch_id alone (of its unique batch_id, row_no) took 4% of the store. The
    store as migrated is checked, so a migration that adds one fails here too."""
    from sqlalchemy import inspect

    with engine().connect() as c:
        found = inspect(c)
        covered = []
        for table in found.get_table_names():
            indexes = [(i["name"], i["column_names"]) for i in found.get_indexes(table)]
            uniques = [(u["name"], u["column_names"]) for u in found.get_unique_constraints(table)]
            for name, columns in indexes:
                covered += [(table, name, other) for other, others in indexes + uniques
                            if other != name and others[:len(columns)] == columns]
    assert covered == []


def test_personal_data_is_encrypted_at_rest(database):
    doc = sample(4)
    request_id = create_request(doc)
    with engine().connect() as c:
        dump = " ".join(
            str(v)
            for table in ("requests", "request_members", "authorizations", "ledger_events")
            for row in c.execute(text(f"SELECT * FROM {table}"))
            for v in row
        )
    for m in doc["members"]:
        assert m["id_number"] not in dump
        assert m["name"] not in dump
    assert keyring().pseudonym(doc["members"][0]["id_number"]) in dump
    assert request_id in dump


def test_pipeline_publishes_a_signed_record_with_the_true_members(database, agencies):
    doc = sample(5)
    result = run_inline(create_request(doc))
    assert result.status == "published"
    record, content = record_of_request(result.request_id)
    assert record.household_ref == result.household_ref and record.completeness == {"household": "complete"}
    assert verify_record(content, record.signature)
    truth = household_in_population(7, 50, 5)
    assert sorted(m["name"] for m in content["members"]) == sorted(p.name for p in truth.members if p.status == "normal")
    assert content["division"]["code"] == truth.division
    assert agencies.stats()["household"]["served"] == 1


def test_publishing_twice_gives_one_version_and_one_ledger_entry(database, agencies):
    request_id = create_request(sample(6))
    first = run_inline(request_id).record_id
    again = publish_record(request_id, as_of=utcnow())
    assert again == first
    assert _count(HouseholdRecord, HouseholdRecord.request_id == request_id) == 1
    published = _count(LedgerEvent, LedgerEvent.kind == "record.published")
    with session() as s:
        kinds = [e.payload.get("request_id") for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "record.published"))]
    assert kinds.count(request_id) == 1 and published >= 1


def test_a_new_request_for_the_same_household_is_a_new_version(database, agencies):
    first = run_inline(create_request(sample(8)))
    second = run_inline(create_request(sample(8)))
    assert first.household_ref == second.household_ref
    with session() as s:
        versions = dict(s.execute(select(HouseholdRecord.id, HouseholdRecord.version)
                                  .where(HouseholdRecord.household_ref == first.household_ref)).all())
    # other tests may have published this household before: the two versions are the last two, in order
    assert versions[second.record_id] == versions[first.record_id] + 1 == max(versions.values())


def test_concurrent_publishes_of_one_household_never_share_a_version(database, agencies):
    ids = [create_request(sample(9)) for _ in range(4)]
    errors = []

    def work(rid):
        try:
            run_inline(rid)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(rid,)) for rid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session() as s:
        rows = s.execute(select(HouseholdRecord.request_id, HouseholdRecord.version, HouseholdRecord.household_ref)
                         .where(HouseholdRecord.request_id.in_(ids))).all()
        households = {h for _, _, h in rows}
        assert len(households) == 1
        earlier = s.scalars(select(HouseholdRecord.version).where(  # another test may have published it before
            HouseholdRecord.household_ref.in_(households), HouseholdRecord.request_id.not_in(ids))).all()
    assert len(rows) == 4
    first = max(earlier, default=0) + 1
    assert sorted(v for _, v, _ in rows) == [first, first + 1, first + 2, first + 3]


def test_request_without_authorization_fetches_nothing_and_publishes_nothing(database, agencies):
    doc = sample(10)
    doc["authorization"] = None
    request_id = create_request(doc)
    result = run_inline(request_id)
    assert result.status == "refused" and result.record_id is None
    assert agencies.stats()["household"]["requests"] == 0  # the agency never heard of it
    with session() as s:
        decisions = s.scalars(select(ConsentDecision).where(ConsentDecision.request_id == request_id)).all()
        refusals = s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "consent.refused")).all()
        assert s.get(Request, request_id).status == "refused"
    assert len(decisions) == len(doc["members"])
    assert {d.reason for d in decisions} == {Reason.NO_AUTHORIZATION.value}
    assert sum(1 for e in refusals if e.payload["request_id"] == request_id) == len(doc["members"])
    assert _count(HouseholdRecord, HouseholdRecord.request_id == request_id) == 0


def _v1(plaintext: str, aad: str) -> str:
    """A value as the code before revision 0009 sealed it (v1: no key id in the associated data)."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from core.crypto import b64e

    keys = keyring()
    nonce = os.urandom(12)
    ct = AESGCM(keys.enc_keys[keys.active_kid]).encrypt(nonce, plaintext.encode(), aad.encode())
    return f"v1.{keys.active_kid}.{b64e(nonce)}.{b64e(ct)}"


def test_a_store_with_data_upgrades_from_the_last_landed_schema(tmp_path, postgres_url):
    """Deployments hold data: every migration since 0003 must apply to a filled store, on both backends."""
    import sqlalchemy as sa

    from core.store import upgrade

    with _scratch_database(postgres_url, "hub_upgrade") as pg:
        for url in (f"sqlite:///{tmp_path / 'old.db'}", pg):
            upgrade(url, "0003")
            eng = sa.create_engine(url)
            with eng.begin() as c:
                if url.startswith("sqlite"):
                    c.execute(sa.text("PRAGMA foreign_keys=ON"))
                c.execute(sa.text("INSERT INTO requests (id, department, purpose, case_ref, sources, status, created_at, "
                                  "updated_at) VALUES ('r1', 'D', 'dibao', 'c', '[]', 'published', '2026-01-01', "
                                  "'2026-01-01')"))
                c.execute(sa.text("INSERT INTO fetch_batches (id, request_id, source, status, requested, refused, "
                                  "returned, fetched_at, validated) VALUES ('b1', 'r1', 'tax', 'complete', 1, 0, 1, "
                                  "'2026-01-01', true)"))
                c.execute(sa.text("INSERT INTO validation_runs (batch_id, suite, success, rows, rows_failed, results, "
                                  "created_at) VALUES ('b1', 'tax_suite', true, 1, 0, '[]', '2026-01-01')"))
                c.execute(sa.text("INSERT INTO quarantine (batch_id, source, row_no, expectation, reason, created_at) "
                                  "VALUES ('b1', 'tax', 0, 'x', 'y', '2026-01-01')"))
                # consent as it was kept before 0011: revocations and expiries in columns of their rows
                c.execute(sa.text("INSERT INTO authorizations (id, request_id, department, purpose, valid_from, "
                                  "valid_until, recheck_interval_days, data_life_days, receipt, receipt_sha256, "
                                  "revoked_at, expired_logged, created_at) VALUES ('a1', 'r1', 'D', 'dibao', "
                                  "'2026-01-01', '2026-02-01', 90, 30, '{}', :h, '2026-01-20', true, '2026-01-01')"),
                          {"h": "0" * 64})
                c.execute(sa.text("INSERT INTO authorization_members (authorization_id, person_ref, adult_from, "
                                  "evidence_sha256, sources, financial_sources, revoked_at) VALUES ('a1', 'p_1', "
                                  "'1998-01-01', :h, '[\"tax\"]', '[]', '2026-01-10')"), {"h": "1" * 64})
                c.execute(sa.text("INSERT INTO scope_revocations (authorization_id, person_ref, source, revoked_at) "
                                  "VALUES ('a1', 'p_1', 'tax', '2026-01-05')"))
                c.execute(sa.text("INSERT INTO request_members (request_id, person_ref, id_number_enc, name_enc, "
                                  "relation) VALUES ('r1', 'p_1', :i, :n, 'head')"),
                          {"i": _v1("210302198001010011", "request_members.id_number_enc:r1"),
                           "n": _v1("张三", "request_members.name_enc:r1")})
            eng.dispose()
            upgrade(url)
            eng = sa.create_engine(url)
            with eng.connect() as c:
                assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISION
                assert c.execute(sa.text("SELECT kind FROM requests WHERE id = 'r1'")).scalar() == "application"
                assert c.execute(sa.text("SELECT count(*) FROM quarantine")).scalar() == 1
                revocations = c.execute(sa.text("SELECT person_ref, source FROM revocations ORDER BY id")).all()
                assert [tuple(r) for r in revocations] == [(None, None), ("p_1", None), ("p_1", "tax")]
                assert c.execute(sa.text("SELECT authorization_id FROM authorization_expiries")).scalar() == "a1"
                assert c.execute(sa.text("SELECT source FROM validation_runs")).scalar() is None
                # a run stored before 0019 keeps its results inline
                results, sha = c.execute(sa.text("SELECT results, results_sha256 FROM validation_runs")).one()
                assert (results in ("[]", []), sha) == (True, None)
                # members' values re-bound to their row (0009): the old associated data no longer opens them
                idn, name = c.execute(sa.text("SELECT id_number_enc, name_enc FROM request_members")).one()
                keys = keyring()
                assert keys.decrypt(idn, aad=aad_member("r1", "id_number_enc", "p_1")) == "210302198001010011"
                assert keys.decrypt(name, aad=aad_member("r1", "name_enc", "p_1")) == "张三"
                with pytest.raises(DecryptionFailed):
                    keys.decrypt(idn, aad="request_members.id_number_enc:r1")
            eng.dispose()


@contextlib.contextmanager
def _scratch_database(postgres_url: str, prefix: str):
    """The URL of a new PostgreSQL database on the server of ``postgres_url``, dropped after the block."""
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_schema_check_at_start_up_names_the_revisions_and_what_to_run(tmp_path):
    """core.store.check_schema: a store that is not at SCHEMA_REVISION (never initialised, or one migration behind)
    is refused with both revisions named and `hub init` as the way out; at head it passes."""
    from core.store import SchemaMismatch, check_schema, schema_revision, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with pytest.raises(SchemaMismatch, match=f"at revision none, this hub needs {SCHEMA_REVISION}"):
        check_schema(url)
    previous = f"{int(SCHEMA_REVISION) - 1:04d}"
    upgrade(url, previous)
    assert schema_revision(url) == previous
    with pytest.raises(SchemaMismatch, match=f"at revision {previous}, .*run `hub init`") as refused:
        check_schema(url)
    assert str(tmp_path) not in str(refused.value)  # revisions only, never where the store is
    upgrade(url)
    check_schema(url)


def _terminate_backends(url: str) -> int:
    """What a PostgreSQL restart does to the pool's connections: every backend of the database ended."""
    import sqlalchemy as sa

    from tests.support.store import POSTGRES_ADMIN_URL

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return len(c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE datname = :db AND pid <> pg_backend_pid()"),
                                 {"db": url.rsplit("/", 1)[1]}).all())
    finally:
        admin.dispose()


@pytest.fixture
def own_postgres(monkeypatch):
    """A PostgreSQL database of the test's own as HUB_DATABASE_URL: its connections are ended, and other tests'
    pooled connections (to the session's database) must not be."""
    from tests.support.store import fresh_postgres

    with fresh_postgres("hub_pool") as url:
        monkeypatch.setenv("HUB_DATABASE_URL", url)
        yield url


def test_a_pooled_postgresql_connection_lost_while_idle_is_replaced_before_use(own_postgres, monkeypatch):
    """Connections idle longer than PING_AFTER_IDLE_S are pinged when taken from the pool (not on every use): one
    that the server ended meanwhile is replaced, and the caller never sees it."""
    from core import store

    postgres_url = own_postgres
    with session() as s:
        assert s.scalar(text("SELECT 1")) == 1
    assert _terminate_backends(postgres_url) >= 1
    monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 0.0)  # the pooled connection counts as idle
    with session() as s:
        assert s.scalar(text("SELECT 1")) == 1


def test_a_connection_lost_while_in_steady_use_fails_once_and_the_next_use_connects_afresh(own_postgres, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from core import store

    postgres_url = own_postgres
    monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 3600.0)  # never idle long enough to be pinged
    with session() as s:
        assert s.scalar(text("SELECT 1")) == 1
    _terminate_backends(postgres_url)
    with pytest.raises(OperationalError):  # the API answers this one 503 (hub.web.errors)
        with session() as s:
            s.scalar(text("SELECT 1"))
    with session() as s:  # the pool was dropped: a new connection
        assert s.scalar(text("SELECT 1")) == 1


def test_a_failed_statement_names_no_value_it_was_given(database):
    """The engines hide bound parameters: a statement that fails (a store's error text reaches logs and tracebacks)
    never carries a value it was given, such as an ID number or a name."""
    from sqlalchemy.exc import DBAPIError

    secret = "11010519491231002X"
    with pytest.raises(DBAPIError) as failed, engine().connect() as conn:
        conn.execute(text("SELECT no_such_column FROM ledger_events WHERE kind = :kind"), {"kind": secret})
    assert secret not in str(failed.value) and "hidden due to hide_parameters" in str(failed.value)


def test_the_asyncio_engine_is_postgresql_s_only_and_loses_a_connection_once(own_postgres, monkeypatch):
    """AsyncEngines (the API's record read on the event loop): none for SQLite; on PostgreSQL the same engine per
    URL, types as the sync engine gives them (aware UTC times), hidden parameters, a connection the server ended fails
    its statement once (the API answers it 503) before the next connects afresh, one ended while idle is replaced
    before use; disposed, nothing stays open."""
    import asyncio
    import datetime as dt

    from sqlalchemy.exc import DBAPIError, OperationalError

    from core import store
    from core.store import AsyncEngines, LedgerEvent

    engines = AsyncEngines()
    assert engines.get("sqlite:///x.db") is None
    monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 3600.0)
    secret = "11010519491231002X"
    at = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)
    with session() as s:
        s.add(LedgerEvent(kind="test.async", recorded_at=at, payload={"n": 1}, leaf_sha256="0" * 64))

    async def scenario():
        eng = engines.get()
        assert eng is engines.get(own_postgres) and eng.url.drivername == "postgresql+psycopg"
        async with eng.connect() as conn:
            row = (await conn.execute(select(LedgerEvent.recorded_at, LedgerEvent.payload)
                                      .where(LedgerEvent.kind == "test.async"))).one()
            assert row.recorded_at == at and row.recorded_at.tzinfo is not None and row.payload == {"n": 1}
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(text("SELECT no_such_column FROM ledger_events WHERE kind = :k"), {"k": secret})
            assert secret not in str(failed.value)
        assert _terminate_backends(own_postgres) >= 1
        with pytest.raises(OperationalError):
            async with eng.connect() as conn:
                await conn.execute(text("SELECT 1"))
        async with eng.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert _terminate_backends(own_postgres) >= 1
        monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 0.0)  # idle: pinged when taken, replaced unseen
        async with eng.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        await engines.dispose()
        assert engines._engines == {}

    asyncio.run(scenario())
    assert _terminate_backends(own_postgres) == 0  # the disposed engine left no connection behind


def test_runs_that_share_a_result_or_data_docs_store_it_once(database):
    """A re-check batch stores thousands of validation runs with a few hundred distinct results: each result and
    each Data Docs is stored once among the validation texts, again by a later run (or another process) without a
    second copy or an error, and every run reads back its own."""
    import json

    from core.store import ValidationRun, ValidationText
    from hub.services.validation import run_docs, validation_runs
    from hub.stages.pipeline import _insert_runs, _Run

    clean = json.dumps([{"check": "id_check_digit", "reason": "身份证号校验位错误", "unexpected": 0, "rows": 2}])
    failed = [{"check": "id_check_digit", "reason": "身份证号校验位错误", "unexpected": 1, "rows": 2}]

    def runs(tag: str) -> list[_Run]:
        return [_Run(None, None, None, f"{tag}_suite", n != 2, 2, int(n == 2), failed if n == 2 else clean, "texts",
                     "packed-docs-of-one-gx-run") for n in range(3)]

    with session() as s:
        first = runs("a")
        _insert_runs(s, first)
    with session() as s:
        again = runs("b")
        _insert_runs(s, again)  # the same texts once more: stored already, kept as they are
    with session() as s:
        kept = s.execute(select(ValidationRun.results, ValidationRun.results_sha256, ValidationRun.docs,
                                ValidationRun.docs_sha256).where(ValidationRun.run_id == "texts")).all()
        texts = {k.results_sha256 for k in kept} | {k.docs_sha256 for k in kept}
        assert s.scalar(select(func.count()).select_from(ValidationText).where(ValidationText.sha256.in_(texts))) == 3
    assert len(kept) == 6 and all(k.results is None and k.docs is None for k in kept)  # none inline
    assert len({k.results_sha256 for k in kept}) == 2 and len({k.docs_sha256 for k in kept}) == 1
    stored = validation_runs(run_id="texts")  # as staff read them
    assert sorted((r.suite, r.rows_failed) for r in stored) == sorted((r.suite, r.rows_failed) for r in first + again)
    for r in stored:
        assert r.has_docs and r.results == (failed if r.rows_failed else json.loads(clean))
        assert run_docs(r.id)[1] == "packed-docs-of-one-gx-run"


def test_the_validation_texts_go_back_inline_when_the_schema_is_taken_back(tmp_path, postgres_url):
    """0019's downgrade: every run's results and Data Docs inline again, as 0018 reads them, on both backends."""
    import json
    from pathlib import Path

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    import core.store
    from core.store import upgrade

    with _scratch_database(postgres_url, "hub_downgrade") as pg:
        for url in (f"sqlite:///{tmp_path / 'new.db'}", pg):
            upgrade(url)
            eng = sa.create_engine(url)
            with eng.begin() as c:
                c.execute(sa.text("INSERT INTO validation_texts (sha256, body) VALUES ('r', :r), ('d', 'docs')"),
                          {"r": json.dumps([{"check": "x", "unexpected": 0}])})
                c.execute(sa.text("INSERT INTO validation_runs (suite, success, rows, rows_failed, results_sha256, "
                                  "docs_sha256, created_at) VALUES ('tax_suite', true, 1, 0, 'r', 'd', '2026-01-01')"))
            eng.dispose()
            cfg = Config()
            cfg.set_main_option("script_location", str(Path(core.store.__file__).parent / "migrations"))
            cfg.attributes["url"] = url
            command.downgrade(cfg, "0018")
            eng = sa.create_engine(url)
            with eng.connect() as c:
                results, docs = c.execute(sa.text("SELECT results, docs FROM validation_runs")).one()
                assert (json.loads(results) if isinstance(results, str) else results) == [{"check": "x",
                                                                                           "unexpected": 0}]
                assert docs == "docs"
                assert not sa.inspect(c).has_table("validation_texts")
            eng.dispose()


def test_a_moment_bound_in_many_rows_is_converted_once_and_each_row_keeps_its_own(database):
    """A multi-row statement binds one ``created_at`` in thousands of rows: converted once, and a row with another
    moment, or none, is still bound as its own; a naive moment is refused however often one came before."""
    import datetime as dt

    from core.store import UTCDateTime

    process = UTCDateTime().dialect_impl(engine().dialect).bind_processor(engine().dialect)
    now = utcnow()
    first = process(now)
    assert process(now) is first
    later = now + dt.timedelta(seconds=1)
    assert process(later) != first and process(later) == process(later + dt.timedelta(0))
    assert process(None) is None and process(now) == first
    with pytest.raises(ValueError, match="naive"):
        process(now.replace(tzinfo=None))
    from core.store import ValidationRun

    with _made_up_runs([{"suite": "test.moment", "success": True, "rows": n, "rows_failed": 0, "results": [],
                         "created_at": at} for n, at in enumerate([now, now, later, now])]):
        with session() as s:
            got = s.execute(select(ValidationRun.created_at).where(ValidationRun.suite == "test.moment")
                            .order_by(ValidationRun.rows)).scalars().all()
    assert [round((g - now).total_seconds(), 3) for g in got] == [0, 0, 1, 0]


@contextlib.contextmanager
def _made_up_runs(rows: list[dict]):
    """Validation runs inserted as given (not the ledger: an entry made up here would fail the ledger's
    verification), removed afterwards: the session's store is read whole by other tests (staff's list of runs)."""
    from core.store import ValidationRun

    table = ValidationRun.__table__
    with session() as s:
        s.execute(table.insert(), rows)
    try:
        yield
    finally:
        with session() as s:
            s.execute(table.delete().where(table.c.suite.in_({r["suite"] for r in rows})))


def test_a_run_stored_without_per_check_results_reads_as_having_none(database):
    """The store allows a validation run without results (inline or among the texts): staff's list of runs shows it
    with no checks rather than failing the whole page (found by the API's fuzzer, after such a run was stored)."""
    from hub.services.validation import validation_runs

    with _made_up_runs([{"suite": "test.bare", "success": True, "rows": 1, "rows_failed": 0, "run_id": "test.bare",
                         "created_at": utcnow()}]):
        (run,) = validation_runs(run_id="test.bare")
    assert run.results == [] and run.suite == "test.bare" and not run.has_docs


def test_a_sqlite_session_is_given_the_connection_returned_last_whatever_others_the_pool_holds(tmp_path):
    """Each SQLite connection has a page cache of its own: after a dozen threads each drew a connection, the next
    sessions are given the one returned last (LIFO), not each of the dozen in turn (each filling its own cache)."""
    from core.store import _engine

    eng = _engine.__wrapped__(f"sqlite:///{tmp_path / 'lifo.db'}")  # made as engine() makes it, not kept by it
    try:
        held = [eng.connect() for _ in range(12)]  # a fetch's threads, each with a connection at once
        drivers = [c.connection.dbapi_connection for c in held]
        for c in held:
            c.close()
        with eng.connect() as c:
            first = c.connection.dbapi_connection
        with eng.connect() as c:
            again = c.connection.dbapi_connection
        assert first is drivers[-1] and again is first
    finally:
        eng.dispose()


def test_a_recheck_made_before_its_key_was_kept_is_found_again_by_it(tmp_path, postgres_url, monkeypatch):
    """0022: the re-checks already made are given their key (the last 20 digits of their ids, which were derived from
    application and run), so a run in flight when the hub is upgraded finds them again and makes no second one; a new
    re-check's id begins with the time instead. The downgrade takes the key away again, on both backends."""
    from pathlib import Path

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    import core.store
    from core.ids import time_prefix
    from core.store import engine, upgrade
    from hub.stages.reverify import recheck_key, start_rechecks

    old = uuid.uuid5(uuid.NAMESPACE_URL, "hub:recheck:a1:nightly-9").hex  # the id 0021's hub gave it
    with _scratch_database(postgres_url, "hub_recheck_key") as pg:
        for url in (f"sqlite:///{tmp_path / 'old.db'}", pg):
            upgrade(url, "0021")
            eng = sa.create_engine(url)
            with eng.begin() as c:
                for rid, kind, parent in (("a1", "application", None), (old, "recheck", "a1")):
                    c.execute(sa.text("INSERT INTO requests (id, department, purpose, case_ref, sources, status, kind, "
                                      "parent_id, created_at, updated_at) VALUES (:i, 'D', 'dibao', 'c', '[]', "
                                      "'running', :k, :p, '2026-01-01', '2026-01-01')"),
                              {"i": rid, "k": kind, "p": parent})
            upgrade(url)
            monkeypatch.setenv("HUB_DATABASE_URL", url)
            assert start_rechecks(["a1"], "nightly-9") == [old]
            [new] = start_rechecks(["a1"], "nightly-10")
            engine(url).dispose()
            with eng.connect() as c:
                keys = dict(c.execute(sa.text("SELECT id, recheck_key FROM requests")).all())
            assert keys == {"a1": None, old: recheck_key("a1", "nightly-9"), new: recheck_key("a1", "nightly-10")}
            assert new == new[:12] + keys[new] and new[:12] <= time_prefix()  # made now
            cfg = Config()
            cfg.set_main_option("script_location", str(Path(core.store.__file__).parent / "migrations"))
            cfg.attributes["url"] = url
            command.downgrade(cfg, "0021")
            with eng.connect() as c:
                assert "recheck_key" not in {col["name"] for col in sa.inspect(c).get_columns("requests")}
                assert c.execute(sa.text("SELECT count(*) FROM requests")).scalar() == 3
            eng.dispose()
