"""The demo: `hub demo --sync` (inline, nothing left running) and `hub demo` (what `make run` runs).

The live demo starts the simulated agencies, Airflow standalone and the hub's API as child processes,
submits a department's request through the API, triggers ``verify_household`` through Airflow's REST API,
waits for it, prints where to look, and stops every child on Ctrl-C.
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub demo` (live) never loads the pipeline, which runs in Airflow,
# and `hub demo --sync` loads it only when it runs.
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from core.settings import DEFAULT_AGENCIES_PORT, DEFAULT_AIRFLOW_PORT, DEFAULT_API_PORT, settings
from hub.services.bootstrap import initialize

DEMO_SEED = 1
DEMO_HOUSEHOLD = 7
DEMO_DEPARTMENT = "MZ-210302"


def _record_summary(household_ref: str) -> str:
    from hub.stages.records import load_record, verify_record

    record, content = load_record(household_ref)
    screening = {p: v["answer"] for p, v in content["assessment"]["screening"].items()}
    return (f"household {household_ref} version {record.version}: {len(content['members'])} members, "
            f"sources {record.completeness}, screening {screening}, {len(content['discrepancies'])} discrepancies, "
            f"signature {'valid' if verify_record(content, record.signature) else 'INVALID'}")


def _ledger_summary() -> str:
    from consent.tree import sign_checkpoint_stage, verify_stage

    cp = sign_checkpoint_stage()
    verify_stage()
    return f"checkpoint {cp['number']} signed over {cp['size']} entries; `hub audit verify`: intact"


def _agencies_answering(url: str) -> dict | None:
    """The agencies' index at ``url`` when agencies answer there (`hub agencies serve`), else None."""
    try:
        resp = requests.get(url, timeout=3)
        index = resp.json() if resp.ok else None
    except (requests.RequestException, ValueError):
        return None
    if not isinstance(index, dict) or not isinstance(index.get("sources"), list):
        return None
    if not isinstance(index.get("households"), int) or not isinstance(index.get("seed"), int):
        return None
    return index


def _print_access(api_url: str, token: str, purpose: str, household_ref: str | None) -> None:
    """Where to look and with which tokens (``token``: the demo department's), for both demos."""
    from hub.services.clients import create_client

    print(f"Hub API:     {api_url}/docs   token (department {DEMO_DEPARTMENT}): {token}")
    print(f"Console:     {api_url}/console/   sign in with the department token above (caseworker: 一证通办, "
          f"requests, records), or")
    print(f"             staff token (sources, validation, quarantine, alerts): "
          f"{create_client('demo staff', 'staff')[1]}")
    print(f"             auditor token (integrity, timelines, unusual reads): "
          f"{create_client('demo auditor', 'auditor')[1]}")
    if household_ref:
        print("Record:      curl -s -H 'Authorization: Bearer " + token + "' \\\n"
              f"               '{api_url}/v1/households/{household_ref}/record?purpose={purpose}'")


# -- residents on their phones (/m/): the demo signs, follows and reads as residents do, over HTTP -------------------

RESIDENT_HOUSEHOLD = 22  # the household whose members sign on their phones in the demo (two adults and a minor)
TRY_HOUSEHOLD = 1  # the household left to sign by hand: among those the provider's login page lists (its second)
MONTHLY_AMOUNT = "1268.00"  # what the demo department reports granting it, yuan per month


def _resident(hub, identity_login: str | None = None, id_number: str = ""):
    """``hub`` (an httpx client of the hub's API, redirects not followed) signed in as the resident of
    ``id_number`` through the identity provider's own login page: the person typed in, the code it shows typed
    back, as a resident does on their phone."""
    import re

    import httpx

    go = hub.get("/m/login", params={"next": "/m/"})
    page = httpx.get(go.headers["location"], timeout=10)
    login = re.search(r'name="login" value="([^"]+)"', page.text).group(1)
    code = re.search(r'class="sms"[^>]*>[^<]*?(\d{6})', page.text).group(1)
    base = go.headers["location"].split("/authorize", 1)[0]
    done = httpx.post(f"{base}/authorize", data={"login": login, "lang": "zh", "person": "", "id_number": id_number,
                                                 "otp": code}, timeout=10)
    back = hub.get(done.headers["location"])
    if back.status_code != 303:
        raise RuntimeError(f"the resident's sign-in failed ({back.status_code})")
    return hub


def _sign(hub, path: str) -> None:
    """Sign the invitation at ``path`` with the financial consent, as the page offers it."""
    import re

    page = hub.get(path)
    fields = {k: re.search(rf'name="{k}" value="([^"]*)"', page.text).group(1) for k in ("csrf", "text_sha256")}
    answer = hub.post(path, data={**fields, "choice": "sign", "financial": "yes"})
    if answer.status_code != 200:
        raise RuntimeError(f"signing failed ({answer.status_code})")


def _mobile(doc: dict) -> dict:
    """A sample request as a department sends it for signing on the phones: every agency source, no paper forms."""
    from schemas.vocabulary import AGENCY_SOURCES

    return {k: v for k, v in doc.items() if k not in ("authorization", "department")} | {
        "mobile_signing": {}, "sources": list(AGENCY_SOURCES)}


def walk_residents(client, token: str, doc: dict, verify) -> dict:
    """One household through 码上办 as its members meet it: the department's request with mobile signing, each
    member's link, each adult signing in through the identity provider and signing (a guardian for each minor),
    the verification (``verify(request_id)`` waits for it), the department reporting the grant, and the resident
    reading the result, the 幸福清单 and 我的数据 with a proof checked. ``client()`` makes an httpx client of the
    hub's API (base URL set, redirects not followed). Returns what it saw, for the summary."""
    from consent.authorizations import adult_from
    from consent.tree import check_proof
    import datetime as dt
    import re

    dept = {"Authorization": f"Bearer {token}"}
    body = _mobile(doc)
    api = client()
    made = api.post("/v1/requests", json=body, headers=dept)
    made.raise_for_status()
    request_id = made.json()["id"]
    links = api.get(f"/v1/requests/{request_id}/invitations", headers=dept).json()["items"]
    paths = [re.sub(r"^https?://[^/]+", "", i["link"]) for i in links]
    today = dt.date.today()
    adults = [(m, p) for m, p in zip(doc["members"], paths) if adult_from(m["id_number"]) <= today]
    minors = [p for m, p in zip(doc["members"], paths) if adult_from(m["id_number"]) > today]
    first = None
    for m, path in adults:
        hub = _resident(client(), id_number=m["id_number"])
        _sign(hub, path)
        first = first or hub
    for path in minors:
        _sign(first, path)  # the first adult, having signed, signs for each minor as guardian
    verify(request_id)
    req = api.get(f"/v1/requests/{request_id}", headers=dept).json()
    if req["status"] != "published":
        return {"request_id": request_id, "status": req["status"], "signed": len(paths)}
    granted = api.post("/v1/assistance", headers=dept, json={
        "household_id": req["household_id"], "programme": doc["purpose"], "granted_from": today.isoformat(),
        "request_id": request_id, "monthly_amount": MONTHLY_AMOUNT})
    granted.raise_for_status()
    result = first.get(f"/m/requests/{request_id}")
    answer = re.search(r'id="answer" data-answer="([^"]+)"', result.text)
    grants = first.get("/m/assistance").text.count('class="card grant"')
    _ledger_summary()  # a checkpoint over everything so far: each entry of 我的数据 has its proof
    data = first.get("/m/data").text
    seqs = re.findall(r"/m/data/(\d+)/proof\.json", data)
    proof = first.get(f"/m/data/{seqs[0]}/proof.json").json() if seqs else None
    if proof is not None:
        check_proof(proof)
    return {"request_id": request_id, "status": "published", "signed": len(paths), "minors": len(minors),
            "answer": answer.group(1) if answer else None, "grants": grants,
            "entries": data.count('class="card entry"'), "proof_seq": proof["seq"] if proof else None}


def _print_residents(api_url: str, walked: dict, try_link: str | None, try_request: str | None) -> None:
    print(f"Residents:   {api_url}/m/   掌上办: sign in with the simulated government identity service (its login "
          "page lists the members of the first households and shows the one-time code)")
    if walked.get("status") == "published":
        print(f"             walked through: request {walked['request_id']}: {walked['signed']} members signed on "
              f"their phones ({walked['minors']} by a guardian) -> verified -> result {walked['answer']} -> "
              f"幸福清单 {walked['grants']} grant ({MONTHLY_AMOUNT} yuan/month) -> 我的数据 {walked['entries']} "
              f"entries, proof of entry {walked['proof_seq']} checked")
    else:
        print(f"             walked through: request {walked.get('request_id')}: {walked.get('status')}")
    if try_link:
        print(f"             try it: {try_link}   (each member's QR code: {api_url}/console/requests/{try_request}); "
              f"sign in as the first person of household {TRY_HOUSEHOLD + 1} on the login page")


def _pending_for_try(client, token: str, doc: dict) -> tuple[str | None, str | None]:
    """A request of another household left waiting for signatures, for whoever runs the demo to sign: (the first
    member's link, the request id)."""
    dept = {"Authorization": f"Bearer {token}"}
    api = client()
    made = api.post("/v1/requests", json=_mobile(doc), headers=dept)
    if made.status_code != 201:
        return None, None
    items = api.get(f"/v1/requests/{made.json()['id']}/invitations", headers=dept).json()["items"]
    return (items[0]["link"] if items else None), made.json()["id"]


def run_sync(households: int = 200) -> int:
    """The whole demo in this process, nothing left running: the agencies at HUB_AGENCIES_URL when they answer
    (their population's seed and size, from their index), else agencies of its own for the time of the demo; one
    department's request run by the hub's worker (hub.services.worker: the stages `hub api` runs without Airflow);
    then the same tokens and addresses as `hub demo` prints, for `hub api` to serve."""
    from agencies.requests import sample_request
    from hub.services.worker import Worker
    from hub.stages.intake import create_request

    initialize()
    given = settings().agencies_url
    index = _agencies_answering(given)
    server = None
    if index is not None:
        households, seed = index["households"], index["seed"]
        print(f"agencies: {given} (answering there: {households} households, seed {seed})")
    else:
        from agencies.server import AgencyServer

        seed = DEMO_SEED
        server = AgencyServer.from_hub_home(households=households, seed=seed).start()
        os.environ["HUB_AGENCIES_URL"] = server.url
        print(f"agencies: {server.url} ({households} households; started for the demo: none answered at {given})")
    try:
        doc = sample_request(seed=seed, households=households, k=DEMO_HOUSEHOLD % households,
                             department=DEMO_DEPARTMENT)
        request_id = create_request(doc)
        print(f"request {request_id}: {doc['purpose']} for {len(doc['members'])} members, sources {doc['sources']}")
        outcome = Worker().run_once(request_id)
        status = outcome.status if outcome is not None else "not run"
        print(f"pipeline: {status}")
        household_ref = None
        if status == "published":
            from core.store import Request, session

            with session() as s:
                household_ref = s.get(Request, request_id).household_ref
            print("record:", _record_summary(household_ref))
        if server is not None:
            print(f"agency counters: { {k: v['served'] for k, v in server.stats().items() if v['requests']} }")
        from fastapi.testclient import TestClient

        from hub.services.clients import create_client
        from hub.web.app import create_app

        token = create_client("demo caseworker", "department", DEMO_DEPARTMENT)[1]
        app = create_app()  # the API in this process, without its worker: the demo runs the worker itself
        api_url = settings().api_url

        def client():
            return TestClient(app, base_url=api_url, follow_redirects=False)

        walked = walk_residents(client, token, sample_request(seed=seed, households=households,
                                                              k=RESIDENT_HOUSEHOLD % households,
                                                              department=DEMO_DEPARTMENT),
                                verify=lambda rid: Worker().run_once(rid))
        try_link, try_request = _pending_for_try(client, token, sample_request(
            seed=seed, households=households, k=TRY_HOUSEHOLD % households, department=DEMO_DEPARTMENT))
        print()
        _print_access(api_url, token, doc["purpose"], household_ref)
        _print_residents(api_url, walked, try_link, try_request)
        print(f"Ledger:      {_ledger_summary()}")
        print(f"Home:        {settings().home}   (nothing left running: `hub api` serves the addresses above, and "
              "without Airflow verifies the requests it receives itself)")
        return 0 if status == "published" and walked.get("status") == "published" else 1
    finally:
        if server is not None:
            server.stop()


def _die_with_parent(parent: int):
    """What a child runs between fork and exec: on Linux, ask the kernel for SIGTERM when the process that started it
    ends, however it ends (a demo killed with SIGKILL cannot stop its children itself, and each is in a session of
    its own, which no signal to the demo's group reaches); and end at once if that process has already gone."""
    prctl = None
    if sys.platform.startswith("linux"):  # looked up before the fork: nothing is imported between fork and exec
        import ctypes

        prctl = ctypes.CDLL(None).prctl

    def arm() -> None:
        if prctl is not None:
            prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
    return arm


class Children:
    """Child processes in their own process groups, stopped together, and each sent SIGTERM by the kernel should the
    process that started them end without stopping them."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
        self.procs.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}")

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_for(what: str, probe, children: Children, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check()
        try:
            if probe():
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def run_live(households: int = 200, distributed: bool = False) -> int:
    """Agencies, the hub's API and Airflow as children; a request through the API and its DAG run. With
    ``distributed``: Airflow on CeleryExecutor (two workers) with Redis and PostgreSQL, the hub's store on
    PostgreSQL too (hub.airflow.distributed), and a re-check of the household through reverify_recipients."""
    from agencies.requests import sample_request
    from hub.airflow.client import AirflowClient, admin_credentials
    from hub.airflow.env import airflow_environment
    from hub.services.clients import create_client

    t0 = time.monotonic()
    cluster = None
    if distributed:
        from hub.airflow.distributed import DEFAULT_ADMIN_URL, DEFAULT_REDIS_URL, Cluster, ensure_databases

        cluster = Cluster(admin_url=settings().distributed_admin_url or DEFAULT_ADMIN_URL,
                          redis_url=settings().distributed_redis_url or DEFAULT_REDIS_URL)
        ensure_databases(cluster)
        os.environ["HUB_DATABASE_URL"] = cluster.store_url
    initialize()
    cfg = settings()
    agencies_url = f"http://127.0.0.1:{DEFAULT_AGENCIES_PORT}/"
    os.environ["HUB_AGENCIES_URL"] = agencies_url
    api_url = f"http://127.0.0.1:{DEFAULT_API_PORT}"
    airflow_url = f"http://127.0.0.1:{DEFAULT_AIRFLOW_PORT}"
    hub_bin = str(Path(sys.executable).parent / "hub")
    children = Children(cfg.home / "log")
    stop = {"now": False}

    def _signal(_sig, _frame):
        if stop["now"]:  # a second signal while the children are being stopped: let them be stopped
            return
        stop["now"] = True
        raise KeyboardInterrupt

    # Ctrl-C, and SIGINT from a script: a process a non-interactive shell starts in the background inherits SIGINT
    # ignored, which Python then keeps; the demo's own handler stops its children whatever it inherited
    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        children.start("agencies", [hub_bin, "agencies", "serve", "--households", str(households),
                                    "--seed", str(DEMO_SEED), "--port", str(DEFAULT_AGENCIES_PORT)])
        wait_for("agencies", lambda: requests.get(agencies_url, timeout=2).ok, children, 60)
        index = requests.get(agencies_url, timeout=5).json()
        agency_urls = {s["key"]: s["base_url"] for s in index["sources"]}
        if cluster is not None:
            from hub.airflow.distributed import environment, migrate, start

            env = environment(cluster, agency_urls)
            migrate(env)
            start(children, cluster, env)
        else:
            env = airflow_environment(agency_urls=agency_urls)
            children.start("airflow", [str(Path(sys.executable).parent / "airflow"), "standalone"], env=env)
        # the API starts verify_household for every request it accepts, through Airflow's REST API
        children.start("api", [hub_bin, "api", "--port", str(DEFAULT_API_PORT)], env={"HUB_AIRFLOW_URL": airflow_url})
        wait_for("hub API", lambda: requests.get(f"{api_url}/health", timeout=2).ok, children, 60)
        print(f"agencies and API up; waiting for Airflow (about half a minute; logs: {children.log_dir})")
        af = None

        def _airflow_ready() -> bool:
            nonlocal af
            if af is None:
                if not (cfg.airflow_home / "simple_auth_manager_passwords.json.generated").exists():
                    return False
                af = AirflowClient.from_env()
            return af.healthy() and af.dag_ready("verify_household")

        wait_for("Airflow", _airflow_ready, children, 300)

        _client, token = create_client("demo caseworker", "department", DEMO_DEPARTMENT)
        doc = sample_request(seed=DEMO_SEED, households=households, k=DEMO_HOUSEHOLD, department=DEMO_DEPARTMENT)
        resp = requests.post(f"{api_url}/v1/requests", json=doc, headers={"Authorization": f"Bearer {token}"},
                             timeout=30)
        resp.raise_for_status()
        request_id, run_id = resp.json()["id"], resp.json()["dag_run_id"]
        if run_id is None:
            raise RuntimeError(f"the API could not start verify_household; see {children.log_dir}/api.log")
        print(f"request {request_id} submitted; the API started verify_household run {run_id}")
        state = af.wait("verify_household", run_id, timeout=600)
        req = requests.get(f"{api_url}/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"},
                           timeout=10).json()
        import httpx

        def client():
            return httpx.Client(base_url=api_url, follow_redirects=False, timeout=30)

        def verified(rid: str) -> None:  # the API started its DAG run when the last member signed
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                got = client().get(f"/v1/requests/{rid}", headers={"Authorization": f"Bearer {token}"}).json()
                if got["status"] in ("published", "refused", "failed"):
                    return
                time.sleep(2)

        walked = walk_residents(client, token, sample_request(seed=DEMO_SEED, households=households,
                                                              k=RESIDENT_HOUSEHOLD, department=DEMO_DEPARTMENT),
                                verify=verified)
        try_link, try_request = _pending_for_try(client, token, sample_request(
            seed=DEMO_SEED, households=households, k=TRY_HOUSEHOLD, department=DEMO_DEPARTMENT))
        user, password = admin_credentials()
        print()
        print(f"verify_household: {state}; request status: {req['status']}  ({time.monotonic() - t0:.0f} s)")
        if cluster is not None:
            recheck = af.trigger("reverify_recipients", {"application_ids": [request_id]})
            print(f"reverify_recipients (a re-check of the same household): "
                  f"{af.wait('reverify_recipients', recheck, timeout=600)}")
            print(f"Executor:    CeleryExecutor, {cluster.workers} workers on queue {cluster.queue}; broker "
                  f"{cluster.redis_url}; metadata and hub store on PostgreSQL ({cluster.prefix}_airflow, "
                  f"{cluster.prefix}_store)")
        print(f"Airflow UI:  {airflow_url}/  (login {user} / {password})")
        _print_access(api_url, token, doc["purpose"], req.get("household_id"))
        _print_residents(api_url, walked, try_link, try_request)
        print(f"Ledger:      {_ledger_summary()}")
        print(f"Logs:        {children.log_dir}")
        print("Ctrl-C stops everything.")
        sys.stdout.flush()
        while True:
            children.check()
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    except Exception as exc:  # report, stop the children, fail
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop["now"] = True
        children.stop()


