"""The `hub` command (see README.md and ../shared/DESIGN.md for the contract)."""

from __future__ import annotations

# Imports inside the command functions below are deliberate: each command loads only what it uses, so `hub --help`,
# `hub init` and `hub agencies serve` start without FastAPI, pandas or Great Expectations.
import argparse
import json
import logging
import sys
from pathlib import Path

from core.settings import DEFAULT_AGENCIES_PORT, DEFAULT_API_PORT, settings
from hub.airflow.schedules import RECHECK_BATCH


def cmd_init(_args) -> int:
    from hub.services.bootstrap import initialize

    cfg = settings()
    r = initialize()
    print(f"hub home:   {cfg.home}")
    print(f"database:   {cfg.database_url.split('@')[-1]}  (schema at head)")
    print(f"keys:       {'created' if r.keyring_created else 'kept'}; airflow secrets: "
          f"{'created' if r.airflow_secrets_created else 'kept'}; agency credentials: "
          f"{'created' if r.agency_credentials_created else 'kept'}; agency answer keys: "
          f"{'created' if r.agency_answer_keys_created else 'kept'}; identity provider registration: "
          f"{'created' if r.identity_registration_created else 'kept'}")
    return 0


def cmd_agencies_serve(args) -> int:
    from agencies.server import AgencyServer, UnknownFaultProfile
    from core.crypto import KeyringMissing

    try:
        server = AgencyServer.from_hub_home(households=args.households, seed=args.seed, faults=args.faults,
                                            port=args.port)
    except (UnknownFaultProfile, KeyringMissing, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on port {args.port} or the twelve after it (the agencies, then the identity "
              f"provider): {exc.strerror}", file=sys.stderr)
        return 2
    print(f"simulated agencies: index on {server.url} ({args.households} households, seed {args.seed}, "
          f"faults {','.join(server.faults.names)})")
    for s in server.index()["sources"]:
        down = "  (down)" if s["key"] in server.faults.down else ""
        print(f"  {s['key']:<22} {s['format']:<5} {s['auth']:<8} {s['base_url']}{down}")
    if server.identity is not None:
        print(f"  {'identity':<22} {'OIDC':<5} {'PKCE':<8} {server.identity.issuer}  (统一身份认证, simulated: "
              "residents sign in at /m/)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_agencies_sample(args) -> int:
    from agencies.requests import sample_request
    from schemas.contracts import SPECS

    sources = tuple(SPECS) if args.sources == "all" else tuple(args.sources.split(","))
    doc = sample_request(seed=args.seed, households=args.households, k=args.household, purpose=args.purpose,
                         sources=sources, department=args.department)
    print(json.dumps(doc, ensure_ascii=False, indent=2))
    return 0


def cmd_clients_create(args) -> int:
    from hub.services.clients import create_client

    try:
        client, token = create_client(args.name, args.role, args.department, public_key=args.public_key)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(f"client {client.id} ({client.role}{', ' + client.department if client.department else ''})", file=sys.stderr)
    return 0


def cmd_clients_list(_args) -> int:
    from hub.services.clients import listing

    for c in listing(limit=10_000):
        print(f"{c['id']}  {c['role']:<10} {c['department'] or '-':<12} {'active' if c['active'] else 'inactive':<8} "
              f"{c['name']}")
    return 0


def cmd_clients_deactivate(args) -> int:
    from hub.services.clients import deactivate

    if not deactivate(args.client_id):
        print("error: no such active client", file=sys.stderr)
        return 1
    print(f"client {args.client_id} deactivated: its token and console sessions no longer work")
    return 0


def cmd_policy(args) -> int:
    """Check an access policy file (default: the one in force) and print what each rule grants."""
    from hub.rules.policy import DEFAULT_POLICY, PolicyError, parse

    path = Path(args.file or settings().access_policy or DEFAULT_POLICY)
    try:
        rules = parse(path.read_text(encoding="utf-8"))
    except (OSError, PolicyError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    for r in rules:
        print(f"{r.name}: {', '.join(r.departments)} x {', '.join(r.purposes)} -> {', '.join(r.returns)}")
    print(f"{path}: {len(rules)} rules, valid")
    return 0


def cmd_keys(args) -> int:
    """Field-encryption keys: status (which key seals how many values), rotate, retire."""
    from core.crypto import keyring
    from hub.services import rotation

    if args.action == "rotate":
        kid, moved = rotation.rotate(batch=args.batch)
        print(f"new active key {kid}; re-encrypted " + ", ".join(f"{k} {n:,}" for k, n in moved.items() if n)
              if any(moved.values()) else f"new active key {kid}; nothing was stored yet")
    elif args.action == "retire":
        if not args.kid:
            print("error: hub keys retire KID", file=sys.stderr)
            return 2
        try:
            rotation.retire(args.kid)
        except KeyError:
            print(f"error: no key {args.kid}", file=sys.stderr)
            return 1
        except rotation.KeyInUse as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"key {args.kid} retired")
        return 0
    active = keyring().active_kid
    for kid, columns in rotation.usage().items():
        total = sum(columns.values())
        print(f"{kid}{' (active)' if kid == active else ''}: {total:,} values"
              + (f" ({', '.join(f'{c} {n:,}' for c, n in sorted(columns.items()))})" if columns else ""))
    return 0


UNREADABLE = object()  # what _read_json gives for a file it could not read (a file may hold null)


def _read_json(path: str, what: str):
    """The JSON document at ``path`` (- for standard input), read as the API reads bodies (core.documents: UTF-8,
    nested at most 32 deep), or UNREADABLE after saying why on one line."""
    from core.documents import DocumentError, read_document

    try:
        return read_document(sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes())
    except OSError as exc:
        print(f"error: cannot read the {what} file: {exc.__class__.__name__}", file=sys.stderr)
    except DocumentError as exc:
        print(f"error: cannot read the {what} file: {exc}", file=sys.stderr)
    return UNREADABLE


def _refused(title: str, problems: list[str]) -> int:
    print(f"error: {title}:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    return 2


def cmd_request_create(args) -> int:
    from hub.stages.intake import InvalidRequest, create_request

    doc = _read_json(args.file, "request")
    if doc is UNREADABLE:
        return 2
    try:
        print(create_request(doc))
    except InvalidRequest as exc:
        return _refused("the request was not accepted", exc.problems)
    return 0


def cmd_record_verify(args) -> int:
    """Check a record's signature offline: the JSON of GET /v1/households/{id}/record, and the hub's public key."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from hub.stages.records import verify_record

    doc = _read_json(args.file, "record")
    if doc is UNREADABLE:
        return 2
    if not isinstance(doc, dict) or not isinstance(doc.get("content"), dict) or not isinstance(doc.get("signature"), str):
        print("error: expected a record with `content` and `signature`", file=sys.stderr)
        return 2
    public = None
    if args.public_key:
        try:
            public = Ed25519PublicKey.from_public_bytes(
                base64.urlsafe_b64decode(args.public_key + "=" * (-len(args.public_key) % 4)))
        except ValueError:
            print("error: --public-key is not an Ed25519 public key (raw, base64url)", file=sys.stderr)
            return 2
    ok = verify_record(doc["content"], doc["signature"], public)
    print("valid" if ok else "INVALID: the record is not the one the hub signed")
    return 0 if ok else 1


def cmd_reverify(args) -> int:
    if args.sync:
        import uuid

        from hub.airflow.alerts import alert_on_failure
        from hub.stages.reverify import due_recipients, recheck_batch, waiting_rechecks

        due, run_id = due_recipients(limit=args.limit), f"cli:{uuid.uuid4().hex}"
        done: dict[str, int] = {}
        # in the DAG's batches: a batch's rows are held decrypted until it ends, so a city's recipients in one
        # would hold them all at once (nothing due: one empty batch, which still finds a killed run's re-checks)
        with alert_on_failure(dag_id="reverify_recipients", task_id="recheck_batch", run_id=run_id):  # as the DAG's
            for i in range(0, max(len(due), 1), args.batch_size):
                for k, v in recheck_batch(due[i: i + args.batch_size], run_id=run_id).items():
                    done[k] = done.get(k, 0) + v
        waiting = waiting_rechecks()
        print(json.dumps({"due": len(due), **done, "waiting": len(waiting),
                          "waiting_since": waiting[0].since.isoformat() if waiting else None}))
        return 0
    return _trigger("reverify_recipients", {"limit": args.limit or 0, "batch_size": args.batch_size}, args.wait)


def _date(text: str | None):
    import datetime as dt

    return dt.date.fromisoformat(text) if text else dt.datetime.now(dt.timezone.utc).date()


def cmd_review(args) -> int:
    from core.settings import settings
    from hub.stages.review import UnknownStandards, run_review, what_if

    try:
        as_of = _date(args.as_of)
    except ValueError:
        print("error: --as-of: a date like 2026-12-31", file=sys.stderr)
        return 2
    if args.standards:  # what a standards version would change, from the records held: no agency call
        try:
            effect = what_if(args.standards, as_of)
        except UnknownStandards as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(effect, ensure_ascii=False, indent=1))
            return 0
        print(f"as of {effect['as_of']}: {effect['households']} households' latest records, "
              f"{effect['current']} (in force) -> {effect['proposed']}")
        print(f"{'programme':<12}{'county':<8}{'enter':>7}{'leave':>7}")
        for programme, counties in effect["programmes"].items():
            for county, n in counties.items():
                print(f"{programme:<12}{county:<8}{n.get('enter', 0):>7}{n.get('leave', 0):>7}")
            total_in = sum(n.get("enter", 0) for n in counties.values())
            total_out = sum(n.get("leave", 0) for n in counties.values())
            print(f"{programme:<12}{'all':<8}{total_in:>7}{total_out:>7}")
        return 0
    if args.sync:
        try:
            residents = args.residents or settings().review_residents
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(run_review(as_of, residents=residents)))
        return 0
    return _trigger("assistance_review", {"as_of": as_of.isoformat()}, args.wait)


def _trigger(dag_id: str, conf: dict, wait: bool) -> int:
    from hub.airflow.client import AirflowClient, AirflowError

    try:
        client = AirflowClient.from_env()
        run_id = client.trigger(dag_id, conf)
        print(f"triggered {dag_id} run {run_id}")
        if wait:
            state = client.wait(dag_id, run_id)
            print(f"run {run_id}: {state}")
            return 0 if state == "success" else 1
    except AirflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_verify(args) -> int:
    if args.sync:
        from hub.services.worker import Worker
        from hub.stages.pipeline import AwaitingSignatures, RequestNotFound, run_inline

        # claimed as the API's own worker claims (hub.services.worker), so that a `hub api` without a scheduler does
        # not verify the same request at the same time, nor this command one the API's worker is running
        worker = Worker()
        claim = worker.claim(args.request_id)
        if claim is None and (holder := worker.holder(args.request_id)) is not None:
            print(f"error: request {args.request_id} is being verified by another process now ({holder}); follow "
                  "it in the console or with GET /v1/requests/{id}", file=sys.stderr)
            return 1
        error = None
        try:
            result = run_inline(args.request_id)
        except RequestNotFound:
            print(f"error: no request {args.request_id}", file=sys.stderr)
            return 2
        except AwaitingSignatures:
            print(f"error: request {args.request_id} waits for its members to sign on their phones; it starts by "
                  "itself once every member has answered", file=sys.stderr)
            return 2
        except Exception as exc:  # the request is left failed, as the worker leaves it; the traceback follows
            error = exc.__class__.__name__
            raise
        finally:
            if claim is not None:
                worker.release(args.request_id, error)
        print(json.dumps(result.__dict__))
        return 0 if result.status == "published" else 1
    return _trigger("verify_household", {"request_id": args.request_id}, args.wait)


def cmd_api(args) -> int:
    import uvicorn

    from hub.services.secrets_check import InsecureSettings
    from hub.web.app import create_app

    if args.workers < 1:
        print("error: --workers: a whole number from 1 up", file=sys.stderr)
        return 2
    if args.workers > 1 and not settings().database_url.startswith("postgresql"):
        print("error: --workers above 1 needs PostgreSQL (HUB_DATABASE_URL=postgresql+psycopg://...): SQLite has "
              "one writer per file, so more processes only wait for each other", file=sys.stderr)
        return 2
    try:
        app = create_app()  # checked here, so that a refusal is one clear line, not a traceback per worker
    except InsecureSettings as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from hub.services import worker

    if worker.enabled():  # said once here, not once per process
        print("no scheduler (HUB_AIRFLOW_URL unset): the API verifies the requests it receives itself, in a worker "
              "per process (HUB_INLINE_WORKER=0 turns it off)", file=sys.stderr)
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    else:  # each worker process makes its own app (and its own ledger writer: hub.web.app, consent.ledger)
        uvicorn.run("hub.web.app:create_app", factory=True, workers=args.workers, host=args.host, port=args.port,
                    log_level="info")
    return 0


def cmd_dci(args) -> int:
    """Federation (DCI): this hub's identity, its peers, and what is due to be sent to them."""
    from connectors.dci_remote import PeersError
    from hub.federation import config

    try:
        if args.action == "identity":
            from connectors.envelope import key_id, public_key_b64
            from core.crypto import keyring

            key = keyring().public_key
            print(json.dumps({"platform_id": config.platform_id(), "dci_url": config.public_url(),
                              "key_id": key_id(key), "public_key": public_key_b64(key), "algorithm": "ed25519"},
                             indent=2))
        elif args.action == "peers":
            for p in config.peers():
                print(f"{p.id:<14} {p.mode:<5} regions {','.join(p.regions):<12} {p.url}  {p.name}")
        else:
            from hub.dci.outbox import run_pending

            print(json.dumps(run_pending()))
    except (PeersError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_check_secrets(_args) -> int:
    from hub.services.secrets_check import environment, problems

    found = problems()
    for p in found:
        print(f"  - {p}", file=sys.stderr)
    print(f"HUB_ENV={environment()}: {'ok for production' if not found else f'{len(found)} problem(s)'}")
    return 1 if found else 0


def cmd_demo(args) -> int:
    from hub import demo

    if args.sync:
        return demo.run_sync(households=args.households)
    return demo.run_live(households=args.households, distributed=args.distributed)


def _id_ref(id_number: str | None) -> str | None:
    from core.crypto import keyring
    from schemas.codes import is_valid_id

    if id_number is None:
        return None
    if not is_valid_id(id_number):
        raise ValueError("--member: not a valid resident ID number")
    return keyring().pseudonym(id_number.upper())


def cmd_consent_grant(args) -> int:
    from hub.stages.intake import InvalidRequest, add_authorization
    from hub.stages.pipeline import RequestNotFound

    doc = _read_json(args.file, "authorization")
    if doc is UNREADABLE:
        return 2
    try:
        print(add_authorization(args.request_id, doc))
    except RequestNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InvalidRequest as exc:
        return _refused("the authorization was not accepted", exc.problems)
    return 0


def cmd_consent_revoke(args) -> int:
    from consent.authorizations import UnknownAuthorization, revoke
    from core.store import session

    try:
        with session() as s:
            scope = revoke(s, args.authorization_id, person_ref=_id_ref(args.member), source=args.source)
    except (UnknownAuthorization, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"revoked ({scope['scope']}); effective from the next fetch")
    return 0


def cmd_consent_show(args) -> int:
    from sqlalchemy import select

    from consent.authorizations import views
    from consent.gate import check
    from core.store import Authorization, Request, session, utcnow

    now = utcnow()
    with session() as s:
        req = s.get(Request, args.request_id)
        if req is None:
            print(f"error: no request {args.request_id}", file=sys.stderr)
            return 2
        receipts = {a.id: a.receipt for a in s.scalars(select(Authorization).where(Authorization.request_id == req.id))}
        out = []
        for view in views(s, req.id):
            status = {ref: {src: check(view, ref, src, req.purpose, req.department, now).value
                            for src in sorted(set(m.sources) | set(req.sources))}
                      for ref, m in view.members.items()}
            out.append({"authorization_id": view.id, "receipt": receipts[view.id], "status_now": status})
    print(json.dumps({"request_id": args.request_id, "at": now.isoformat(), "authorizations": out},
                     ensure_ascii=False, indent=2))
    return 0


def cmd_audit_checkpoint(_args) -> int:
    from consent.tree import checkpoint_now
    from core.crypto import keyring

    # safe to run concurrently (the DAG, the demo, another shell): one checkpointer at a time; with nothing new
    # since the latest checkpoint, that one is printed
    print(checkpoint_now(keyring().signing_key).note, end="")
    return 0


def cmd_audit_verify(_args) -> int:
    from consent.tree import verify
    from core.crypto import keyring
    from core.store import session

    with session() as s:
        result = verify(s, keyring().public_key)
    if result.intact:
        print(f"intact: {result.events} events, {result.leaves} in the tree, {result.checkpoints} signed checkpoints, "
              f"root {result.root}")
        return 0
    print(f"NOT INTACT: {len(result.problems)} problem(s)", file=sys.stderr)
    for p in result.problems:
        print(f"  - {p}", file=sys.stderr)
    return 1


def cmd_audit_proof(args) -> int:
    from consent.tree import NotCheckpointed, inclusion
    from core.store import session

    try:
        with session() as s:
            print(json.dumps(inclusion(s, args.seq), ensure_ascii=False, indent=2))
    except NotCheckpointed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_audit_answer(args) -> int:
    from hub.stages.pipeline import check_answers

    try:
        source, checks = check_answers(args.batch_id)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc = {"batch_id": args.batch_id, "source": source, "answers": [c._asdict() for c in checks],
           "verified": bool(checks) and not any(c.problem for c in checks)}
    print(json.dumps(doc, ensure_ascii=False, indent=2))
    return 0 if doc["verified"] else 1


def cmd_agencies_keys(args) -> int:
    from connectors.signing import public_keys, retire_answer_key, rotate_answer_key
    from schemas.contracts import SPECS

    home = settings().home
    if args.action != "list" and not args.source or args.action == "retire" and not args.kid:
        print(f"error: `hub agencies keys {args.action}` needs a source{' and a key id' if args.action == 'retire' else ''}",
              file=sys.stderr)
        return 2
    try:
        if args.action == "rotate":
            print(f"{args.source}: new answer key {rotate_answer_key(home, args.source)} active; the old ones stay "
                  "trusted until retired")
        elif args.action == "retire":
            retire_answer_key(home, args.source, args.kid)
            print(f"{args.source}: answer key {args.kid} retired (still verifies stored answers)")
        else:
            print(json.dumps({k: public_keys(home, k) for k in SPECS if args.source in (None, k)}, indent=2))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    return 0


def cmd_bench(args) -> int:
    from bench.run import main as bench

    bench(quick=args.quick, only=args.only, airflow=args.airflow)
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub", description="社会救助家庭经济状况核对平台 / social-assistance verification hub")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create or upgrade the store and keys under HUB_HOME").set_defaults(func=cmd_init)

    ag = sub.add_parser("agencies", help="the simulated agencies").add_subparsers(dest="agencies", required=True)
    serve = ag.add_parser("serve", help="start every simulated agency")
    serve.add_argument("--households", type=int, default=1000)
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument("--faults", default="none")
    serve.add_argument("--port", type=int, default=DEFAULT_AGENCIES_PORT)
    serve.set_defaults(func=cmd_agencies_serve)
    sample = ag.add_parser("sample-request", help="print a complete, valid request for generated household K")
    sample.add_argument("--households", type=int, default=1000)
    sample.add_argument("--seed", type=int, default=1)
    sample.add_argument("--household", type=int, required=True)
    sample.add_argument("--purpose", default="dibao")
    sample.add_argument("--sources", default="household", help="comma-separated source keys, or all")
    sample.add_argument("--department", default="MZ-210302")
    sample.set_defaults(func=cmd_agencies_sample)
    ak = ag.add_parser("keys", help="the agencies' answer-signing keys the hub trusts: list, rotate, retire")
    ak.add_argument("action", choices=["list", "rotate", "retire"])
    ak.add_argument("source", nargs="?", help="a source key (required for rotate and retire)")
    ak.add_argument("kid", nargs="?", help="retire: the key id to stop trusting for new answers")
    ak.set_defaults(func=cmd_agencies_keys)

    cl = sub.add_parser("clients", help="API clients").add_subparsers(dest="clients", required=True)
    create = cl.add_parser("create", help="print a new API token")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["department", "auditor", "staff", "admin", "federation"])
    create.add_argument("--department", help="a department's code; for --role federation the platform's code "
                        "(FED-... or HUB-..., its DCI sender id)")
    create.add_argument("--public-key", help="--role federation: the platform's Ed25519 public key, raw base64url "
                        "(write --public-key=KEY: a key may begin with '-')")
    create.set_defaults(func=cmd_clients_create)
    cl.add_parser("list", help="every client (no tokens: only their hashes are kept)").set_defaults(func=cmd_clients_list)
    deact = cl.add_parser("deactivate", help="revoke a client's token and console sessions")
    deact.add_argument("client_id")
    deact.set_defaults(func=cmd_clients_deactivate)

    fed = sub.add_parser("dci", help="federation over the DCI Social Registry API (部省联网, 跨地区核对)")
    fed.add_argument("action", choices=["identity", "peers", "deliver"],
                     help="identity: what a peer registers for this hub (platform code, Ed25519 key); peers: the "
                     "configured peers (HUB_DCI_PEERS, tokens not shown); deliver: send the asynchronous answers "
                     "and notifications that are due")
    fed.set_defaults(func=cmd_dci)

    sub.add_parser("check-secrets", help="what would stop the hub outside development (HUB_ENV=production)"
                   ).set_defaults(func=cmd_check_secrets)

    keys = sub.add_parser("keys", help="field-encryption keys: status, rotate (re-encrypt while serving), retire")
    keys.add_argument("action", choices=["status", "rotate", "retire"])
    keys.add_argument("kid", nargs="?", help="retire: the key to remove (refused while anything needs it)")
    keys.add_argument("--batch", type=int, default=500, help="rotate: values per transaction")
    keys.set_defaults(func=cmd_keys)

    pol = sub.add_parser("policy", help="the access policy (department x purpose -> what of the record)")
    pol.add_argument("action", choices=["check"])
    pol.add_argument("file", nargs="?", help="a policy TOML file (default: the one in force)")
    pol.set_defaults(func=cmd_policy)

    rq = sub.add_parser("request", help="department requests").add_subparsers(dest="request", required=True)
    rc = rq.add_parser("create", help="store a request with its authorizations; print its id")
    rc.add_argument("file", help="request JSON (- for standard input)")
    rc.set_defaults(func=cmd_request_create)

    rec = sub.add_parser("record", help="published household records").add_subparsers(dest="record", required=True)
    rv = rec.add_parser("verify", help="check a record's Ed25519 signature (offline with --public-key)")
    rv.add_argument("file", help="the record JSON as the API returns it (- for standard input)")
    rv.add_argument("--public-key", help="the hub's public key, raw base64url (GET /v1/keys/record-signing)")
    rv.set_defaults(func=cmd_record_verify)

    v = sub.add_parser("verify", help="run the pipeline for one request")
    v.add_argument("request_id")
    v.add_argument("--sync", action="store_true", help="run inline instead of triggering the DAG")
    v.add_argument("--wait", action="store_true", help="with the DAG: wait until the run ends")
    v.set_defaults(func=cmd_verify, needs_store=True)

    rv2 = sub.add_parser("reverify", help="re-check every current recipient whose authorization allows it")
    rv2.add_argument("--limit", type=int, default=None, help="at most this many households")
    rv2.add_argument("--sync", action="store_true", help="run inline instead of triggering reverify_recipients")
    rv2.add_argument("--batch-size", type=_positive, default=RECHECK_BATCH,
                     help=f"households per batch (default {RECHECK_BATCH}); the DAG's param of the same name")
    rv2.add_argument("--wait", action="store_true", help="with the DAG: wait until the run ends")
    rv2.set_defaults(func=cmd_reverify, needs_store=True)

    rw = sub.add_parser("review", help="精准评估: who is missed (应救未救), who is over-assisted (过度救助), movement; "
                        "with --standards, what a standards version would change")
    rw.add_argument("--as-of", help="the day reviewed, YYYY-MM-DD (default: today, UTC)")
    rw.add_argument("--standards", help="a standards version (hub.rules.standards): print who would enter or leave "
                    "each programme per county, from the records held, with no agency call")
    rw.add_argument("--json", action="store_true", help="with --standards: print JSON")
    rw.add_argument("--residents", type=int, help="residents served, for coverage (default HUB_REVIEW_RESIDENTS)")
    rw.add_argument("--sync", action="store_true", help="run inline instead of triggering assistance_review")
    rw.add_argument("--wait", action="store_true", help="with the DAG: wait until the run ends")
    rw.set_defaults(func=cmd_review, needs_store=True)

    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--port", type=int, default=DEFAULT_API_PORT)
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--workers", type=int, default=1,
                     help="server processes (PostgreSQL only; each with its own ledger writer and rate limits)")
    api.set_defaults(func=cmd_api, needs_store=True)

    d = sub.add_parser("demo", help="what `make run` runs after set-up")
    d.add_argument("--sync", action="store_true", help="run the whole demo inline and exit")
    d.add_argument("--households", type=int, default=200)
    d.add_argument("--distributed", action="store_true",
                   help="Airflow on CeleryExecutor with Redis and PostgreSQL (what `make run-distributed` runs)")
    d.set_defaults(func=cmd_demo)
    co = sub.add_parser("consent", help="authorizations").add_subparsers(dest="consent", required=True)
    g = co.add_parser("grant", help="add a household's authorization to a request; print its id")
    g.add_argument("request_id")
    g.add_argument("file", help="authorization JSON (- for standard input)")
    g.set_defaults(func=cmd_consent_grant)
    r = co.add_parser("revoke", help="revoke an authorization, one member's consent, or one source of it")
    r.add_argument("authorization_id")
    r.add_argument("--member", help="the member's ID number")
    r.add_argument("--source", help="with --member: one source")
    r.set_defaults(func=cmd_consent_revoke)
    sh = co.add_parser("show", help="a request's consent receipts and what the gate would decide now")
    sh.add_argument("request_id")
    sh.set_defaults(func=cmd_consent_show)

    au = sub.add_parser("audit", help="the tamper-evident ledger").add_subparsers(dest="audit", required=True)
    au.add_parser("checkpoint", help="integrate new entries and sign a checkpoint").set_defaults(func=cmd_audit_checkpoint)
    au.add_parser("verify", help="check the whole ledger; exit 0 only when intact").set_defaults(func=cmd_audit_verify)
    pr = au.add_parser("proof", help="the inclusion proof of one entry against the latest signed checkpoint")
    pr.add_argument("seq", type=int)
    pr.set_defaults(func=cmd_audit_proof)
    aa = au.add_parser("answer", help="verify a batch's stored agency answers again: hashes, signatures, counts")
    aa.add_argument("batch_id")
    aa.set_defaults(func=cmd_audit_answer, needs_store=True)

    b = sub.add_parser("bench", help="run the benchmarks; print a table and write bench/results.json")
    b.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes at most")
    b.add_argument("--only", nargs="*", help="run only benchmarks whose module name contains one of these")
    b.add_argument("--airflow", action="store_true",
                   help="also time reverify_recipients through real DAG runs (embedded and distributed; an hour or more)")
    b.set_defaults(func=cmd_bench)
    return p


# commands that work on a home without `hub init`: it, what sets itself up (demo: `make run`), what makes its own
# scratch homes (bench), and what reads only files or generated data
WITHOUT_HOME = {("init",), ("demo",), ("bench",), ("policy",), ("check-secrets",), ("agencies", "sample-request"),
                ("record", "verify")}


def _command(args) -> tuple[str, ...]:
    sub = getattr(args, args.command, None)  # a group's subcommand is kept under the group's name
    return (args.command, sub) if isinstance(sub, str) else (args.command,)


def _home_problem() -> str | None:
    """Why this HUB_HOME cannot be used yet (no keys, or the embedded store's file missing), with the fix; None when
    it can. A PostgreSQL store is checked by the command that needs it (check_schema)."""
    cfg = settings()
    if not cfg.keyring_path.exists():
        return (f"{cfg.home} is not set up (no keys): run `hub init` first (or `make run`), or point HUB_HOME at the "
                "hub's home")
    if cfg.database_url.startswith("sqlite:///") and not Path(cfg.database_url.removeprefix("sqlite:///")).exists():
        return f"the store {cfg.database_url.removeprefix('sqlite:///')} does not exist: run `hub init` first"
    return None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    command = _command(args)
    if not any(command[:len(w)] == w for w in WITHOUT_HOME):
        problem = _home_problem()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    if getattr(args, "needs_store", False):  # serving or running on a store of another schema would corrupt it
        from sqlalchemy.exc import OperationalError

        from core.store import SchemaMismatch, check_schema

        try:
            check_schema()
        except SchemaMismatch as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OperationalError as exc:
            print(f"error: the store at HUB_DATABASE_URL cannot be reached ({type(exc.orig).__name__}): check that it "
                  "runs and the URL, then `hub init`", file=sys.stderr)
            return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
