"""Settings read from the environment (never from the repository). Every HUB_* variable is read here and nowhere
else: the rest of the hub asks ``settings()``. A value that cannot be used is a ValueError naming the variable,
never quoting the value.

HUB_HOME          where the store and keys live (default ./var)
HUB_DATABASE_URL  SQLAlchemy URL of the store (default SQLite in HUB_HOME)
HUB_DATABASE_ADMIN_URL  a PostgreSQL login that owns the schema: `hub init` migrates as it and grants the login of
                  HUB_DATABASE_URL what the application needs (unset: `hub init` migrates as HUB_DATABASE_URL)
HUB_AGENCIES_URL  the simulated agencies' index (default http://127.0.0.1:8700/)
HUB_AGENCIES_HANG_S  how long a hanging answer of the simulated agencies hangs, in seconds (default 30)
HUB_RECHECK_LEASE_S  how long a re-check's lease holds without renewal, in seconds (default 1800): a re-check whose
                  worker is gone is resumed or closed by the next run once it lapses (at once on the same host)
HUB_API_URL       where `hub api` is reached, for links in logs (default http://127.0.0.1:8000)
HUB_API_RATE      the API's rate limit per client, "<requests per second>/<burst>" (default 20/60); 0 or off: none
                  (parsed and checked by hub.web.ratelimit)
HUB_ENV           development (the default), test, staging or production: outside development the hub refuses to
                  start on default, missing or exposed secrets (hub.services.secrets_check)
HUB_LOOKUP_PER_HOUR  household lookups (一证通办) a department may make per rolling hour (default 30)
HUB_DEFAULT_DATA_LIFE_DAYS  how long raw agency answers are kept when no authorization states a data life
                  (a request stored without one, or whose authorizations are gone; default 30, from 1 to 3650)
HUB_LOG_RETENTION_DAYS  how long log files are kept, in days: at least 180 (Cybersecurity Law Art. 21), which is
                  also what a smaller value or one that is not a whole number means
HUB_API_MAX_BODY_BYTES  the largest request body the JSON API reads (default 1048576, 1 MiB, as the DCI routes'):
                  a larger one is refused with 413
HUB_ACCESS_POLICY the access policy file (default: hub/rules/access_policy.toml)
HUB_LEDGER_ORIGIN the ledger's origin line, the name of its checkpoints' signing key
                  (default anshan.verification-hub/ledger)
HUB_LEDGER_GROUP_MS  how long the API's ledger writer waits for more entries before it commits a group (default 2
                  ms; 0: it commits what is queued at once); a read answers once its own entry is durable
HUB_LEDGER_WAIT_S how long a read waits for its ledger entry to be durable before it is refused with 503 (default 10)
HUB_CONTROLLER_NAME, HUB_CONTROLLER_NAME_EN  the verification centre that controls the data, as every consent
                  receipt names it, in Chinese and in English (default Anshan's centre); 1 to 128 characters
HUB_REGION_CODE   the division code of the hub's region (GB/T 2260, six digits; default 210300, Anshan)
HUB_DCI_ID        this hub's platform code, its DCI sender id, FED-... or HUB-... (default HUB-<HUB_REGION_CODE>,
                  HUB-210300 for Anshan's hub)
HUB_DCI_URL       where peers reach this hub's DCI API, for their callbacks (unset: HUB_API_URL + /dci,
                  hub.federation.config)
HUB_DCI_PEERS     a JSON file of the peers this hub asks and calls back (connectors.dci_remote); unset: none
HUB_AIRFLOW_URL   Airflow's API server; set, a department's request starts its DAG run there at once (unset: the
                  hub runs without Airflow, and Airflow's client looks at http://127.0.0.1:8080)
HUB_AIRFLOW_USER, HUB_AIRFLOW_PASSWORD  a login to Airflow's API (unset: the standalone admin's generated one)
HUB_INLINE_WORKER 1 (the default) or 0: without HUB_AIRFLOW_URL, `hub api` verifies the requests it receives
                  itself, in a worker thread of its own (hub.services.worker); 0: requests wait for `hub verify`
HUB_VALIDATION_PROCESSES  how many processes of its own a long-lived process that verifies (the API's worker)
                  validates a request's sources in, side by side (schemas.parallel); 0: in the process itself, one
                  source after another (default: the machine's cores, at most 4)
HUB_OIDC_ISSUER   the identity provider (统一身份认证, OpenID Connect) residents sign in with at /m/ (unset: the
                  `identity` entry of the agencies' index, HUB_AGENCIES_URL: the simulated one)
HUB_OIDC_CLIENT_ID, HUB_OIDC_CLIENT_SECRET  the hub's registration with that provider (unset: the one `hub init`
                  writes under HUB_HOME, identity_client.json, which the simulated provider reads)
HUB_RESIDENT_SESSION_MIN  how long a resident's session on /m/ lasts, in minutes (default 30)
HUB_DISTRIBUTED_ADMIN_URL, HUB_DISTRIBUTED_REDIS_URL  `hub demo --distributed`: a PostgreSQL login that may create
                  databases, and Redis (unset: the defaults of hub.airflow.distributed)
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.ids import PLATFORM

DEFAULT_AGENCIES_PORT = 8700
DEFAULT_API_PORT = 8000
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_DATA_LIFE_DAYS = 30
DEFAULT_API_MAX_BODY_BYTES = 1 << 20
DEFAULT_API_RATE = "20/60"
DEFAULT_RECHECK_LEASE_S = 1800.0
DEFAULT_AGENCIES_HANG_S = 30.0
MIN_LOG_RETENTION_DAYS = 180
DEFAULT_LEDGER_ORIGIN = "anshan.verification-hub/ledger"
DEFAULT_LEDGER_GROUP_MS = 2.0
DEFAULT_LEDGER_WAIT_S = 10.0
DEFAULT_CONTROLLER_NAME = "鞍山市社会救助家庭经济状况核对中心"
DEFAULT_CONTROLLER_NAME_EN = "Anshan social assistance verification centre"
DEFAULT_REGION_CODE = "210300"  # 鞍山市
MAX_NAME = 128

_PLATFORM = re.compile(PLATFORM)
_DIVISION = re.compile(r"[1-9][0-9]{5}")


def _env(name: str) -> str | None:
    """The variable's value; None when it is unset or blank."""
    return (os.environ.get(name) or "").strip() or None


def _name(variable: str, default: str) -> str:
    value = _env(variable) or default
    if len(value) > MAX_NAME or any(unicodedata.category(c).startswith("C") for c in value):
        raise ValueError(f"{variable}: a name of 1 to {MAX_NAME} characters, without control characters")
    return value


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    agencies_url: str
    api_url: str = f"http://127.0.0.1:{DEFAULT_API_PORT}"
    database_url_given: bool = False  # HUB_DATABASE_URL is set (else database_url is the development default)

    @property
    def keyring_path(self) -> Path:
        return self.home / "keys" / "keyring.json"

    @property
    def airflow_home(self) -> Path:
        return Path(os.environ.get("AIRFLOW_HOME") or self.home / "airflow")

    @property
    def environment(self) -> str:
        """HUB_ENV, lower case (default development)."""
        return (os.environ.get("HUB_ENV") or "development").strip().lower()

    @property
    def database_admin_url(self) -> str | None:
        """HUB_DATABASE_ADMIN_URL, or None."""
        return os.environ.get("HUB_DATABASE_ADMIN_URL") or None

    @property
    def default_data_life_days(self) -> int:
        """HUB_DEFAULT_DATA_LIFE_DAYS: whole days from 1 to 3650, as an authorization's data life (ValueError
        otherwise, naming the variable only)."""
        raw = os.environ.get("HUB_DEFAULT_DATA_LIFE_DAYS", "").strip() or str(DEFAULT_DATA_LIFE_DAYS)
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= 3650):
            raise ValueError("HUB_DEFAULT_DATA_LIFE_DAYS: whole days from 1 to 3650")
        return int(raw)

    @property
    def log_retention_days(self) -> int:
        """HUB_LOG_RETENTION_DAYS, never below MIN_LOG_RETENTION_DAYS (the law's floor, also what a value that is not
        a whole number means)."""
        try:
            wanted = int(os.environ.get("HUB_LOG_RETENTION_DAYS", MIN_LOG_RETENTION_DAYS))
        except ValueError:
            wanted = MIN_LOG_RETENTION_DAYS
        return max(MIN_LOG_RETENTION_DAYS, wanted)

    @property
    def lookup_per_hour(self) -> int:
        """HUB_LOOKUP_PER_HOUR: a whole number, at least 1 (ValueError otherwise, naming the variable only)."""
        raw = os.environ.get("HUB_LOOKUP_PER_HOUR", "").strip() or "30"
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and int(raw) >= 1):
            raise ValueError("HUB_LOOKUP_PER_HOUR: a whole number of household lookups per hour, at least 1")
        return int(raw)

    @property
    def api_max_body_bytes(self) -> int:
        """HUB_API_MAX_BODY_BYTES: whole bytes from 1024 to 1 GiB (ValueError otherwise, naming the variable only)."""
        raw = os.environ.get("HUB_API_MAX_BODY_BYTES", "").strip() or str(DEFAULT_API_MAX_BODY_BYTES)
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1024 <= int(raw) <= 1 << 30):
            raise ValueError("HUB_API_MAX_BODY_BYTES: a whole number of bytes from 1024 to 1073741824")
        return int(raw)

    @property
    def api_rate(self) -> str:
        """HUB_API_RATE as given (default DEFAULT_API_RATE); hub.web.ratelimit.Limit.parse reads and checks it."""
        return os.environ.get("HUB_API_RATE", DEFAULT_API_RATE)

    @property
    def access_policy(self) -> str | None:
        """HUB_ACCESS_POLICY, the policy file's path; None: the hub's own (hub/rules/access_policy.toml)."""
        return os.environ.get("HUB_ACCESS_POLICY") or None

    @property
    def ledger_origin(self) -> str:
        """HUB_LEDGER_ORIGIN (default DEFAULT_LEDGER_ORIGIN)."""
        return os.environ.get("HUB_LEDGER_ORIGIN", DEFAULT_LEDGER_ORIGIN)

    @property
    def controller(self) -> dict[str, str]:
        """The data controller a consent receipt names: {"name": HUB_CONTROLLER_NAME, "name_en":
        HUB_CONTROLLER_NAME_EN} (defaults: Anshan's centre; ValueError naming the variable for a name longer than
        128 characters or with control characters)."""
        return {"name": _name("HUB_CONTROLLER_NAME", DEFAULT_CONTROLLER_NAME),
                "name_en": _name("HUB_CONTROLLER_NAME_EN", DEFAULT_CONTROLLER_NAME_EN)}

    @property
    def region_code(self) -> str:
        """HUB_REGION_CODE: six digits, the first not 0 (ValueError otherwise, naming the variable only)."""
        value = _env("HUB_REGION_CODE") or DEFAULT_REGION_CODE
        if not (value.isascii() and _DIVISION.fullmatch(value)):
            raise ValueError("HUB_REGION_CODE: the region's six-digit division code (GB/T 2260), e.g. 210300")
        return value

    @property
    def dci_id(self) -> str:
        """HUB_DCI_ID: FED-... or HUB-... (default HUB-<region_code>; ValueError otherwise, naming the variable
        only)."""
        value = (os.environ.get("HUB_DCI_ID") or f"HUB-{self.region_code}").strip()
        if not _PLATFORM.fullmatch(value):
            raise ValueError("HUB_DCI_ID: this hub's platform code, FED-... or HUB-..., e.g. HUB-210300")
        return value

    @property
    def dci_url(self) -> str | None:
        """HUB_DCI_URL, or None (then HUB_API_URL + /dci: hub.federation.config.public_url)."""
        return os.environ.get("HUB_DCI_URL") or None

    @property
    def dci_peers(self) -> str | None:
        """HUB_DCI_PEERS, the peers file's path, or None: no peers."""
        return os.environ.get("HUB_DCI_PEERS") or None

    @property
    def airflow_url(self) -> str | None:
        """HUB_AIRFLOW_URL, or None: the hub runs without Airflow."""
        return os.environ.get("HUB_AIRFLOW_URL") or None

    @property
    def inline_worker(self) -> bool:
        """HUB_INLINE_WORKER: 1 or 0 (also true/false, yes/no, on/off; default 1; ValueError otherwise, naming the
        variable only). Whether `hub api` runs received requests itself when no scheduler is configured."""
        raw = (_env("HUB_INLINE_WORKER") or "1").lower()
        if raw not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError("HUB_INLINE_WORKER: 1 (the API runs requests itself without Airflow) or 0")
        return raw in ("1", "true", "yes", "on")

    @property
    def airflow_login(self) -> tuple[str, str] | None:
        """(HUB_AIRFLOW_USER, HUB_AIRFLOW_PASSWORD) when both are set, else None."""
        user, password = os.environ.get("HUB_AIRFLOW_USER"), os.environ.get("HUB_AIRFLOW_PASSWORD")
        return (user, password) if user and password else None

    @property
    def oidc_issuer(self) -> str | None:
        """HUB_OIDC_ISSUER, or None: the agencies' index names the (simulated) provider."""
        return (os.environ.get("HUB_OIDC_ISSUER") or "").strip() or None

    @property
    def oidc_client(self) -> tuple[str, str] | None:
        """(HUB_OIDC_CLIENT_ID, HUB_OIDC_CLIENT_SECRET) when the id is set, else None: HUB_HOME's registration."""
        client = (os.environ.get("HUB_OIDC_CLIENT_ID") or "").strip()
        return (client, os.environ.get("HUB_OIDC_CLIENT_SECRET") or "") if client else None

    @property
    def resident_session_s(self) -> float:
        """HUB_RESIDENT_SESSION_MIN in seconds: minutes, a number above 0 (ValueError otherwise, naming it only)."""
        return _seconds("HUB_RESIDENT_SESSION_MIN", 30, zero=False, unit="minutes") * 60

    @property
    def distributed_admin_url(self) -> str | None:
        """HUB_DISTRIBUTED_ADMIN_URL, or None."""
        return os.environ.get("HUB_DISTRIBUTED_ADMIN_URL") or None

    @property
    def distributed_redis_url(self) -> str | None:
        """HUB_DISTRIBUTED_REDIS_URL, or None."""
        return os.environ.get("HUB_DISTRIBUTED_REDIS_URL") or None

    @property
    def agencies_hang_s(self) -> float:
        """HUB_AGENCIES_HANG_S: seconds, a number from 0 up (ValueError otherwise, naming the variable only)."""
        return _seconds("HUB_AGENCIES_HANG_S", DEFAULT_AGENCIES_HANG_S, zero=True)

    @property
    def recheck_lease_s(self) -> float:
        """HUB_RECHECK_LEASE_S: seconds, a number above 0 (ValueError otherwise, naming the variable only)."""
        return _seconds("HUB_RECHECK_LEASE_S", DEFAULT_RECHECK_LEASE_S, zero=False)

    @property
    def ledger_group_s(self) -> float:
        """HUB_LEDGER_GROUP_MS in seconds: milliseconds, a number from 0 up (ValueError otherwise, naming it only)."""
        return _seconds("HUB_LEDGER_GROUP_MS", DEFAULT_LEDGER_GROUP_MS, zero=True, unit="milliseconds") / 1000

    @property
    def ledger_wait_s(self) -> float:
        """HUB_LEDGER_WAIT_S: seconds, a number above 0 (ValueError otherwise, naming the variable only)."""
        return _seconds("HUB_LEDGER_WAIT_S", DEFAULT_LEDGER_WAIT_S, zero=False)

    @property
    def validation_processes(self) -> int:
        """HUB_VALIDATION_PROCESSES: a whole number from 0 up (ValueError otherwise, naming the variable only);
        default the machine's cores, at most 4."""
        raw = _env("HUB_VALIDATION_PROCESSES")
        if raw is None:
            return min(4, os.cpu_count() or 1)
        if not raw.isdigit():
            raise ValueError("HUB_VALIDATION_PROCESSES: a whole number from 0 up (0: validate in the process itself)")
        return int(raw)

    @property
    def population_profile(self) -> str:
        """HUB_POPULATION_PROFILE: what the simulated population looks like (agencies.population.PROFILES): "city"
        (the default, Anshan as published) or "classic" (the tests' population)."""
        return _env("HUB_POPULATION_PROFILE") or "city"

    @property
    def review_residents(self) -> int | None:
        """HUB_REVIEW_RESIDENTS: the residents of the population served, a whole number above 0, for the review's
        coverage (recipients per 1,000 residents); None when unset (ValueError otherwise, naming the variable only)."""
        raw = _env("HUB_REVIEW_RESIDENTS")
        if raw is None:
            return None
        if not raw.strip().isdigit() or int(raw) <= 0:
            raise ValueError("HUB_REVIEW_RESIDENTS: a whole number above 0")
        return int(raw)


def _seconds(name: str, default: float, *, zero: bool, unit: str = "seconds") -> float:
    """A variable holding seconds: a finite number from 0 up (``zero``) or above 0, else ValueError naming it only."""
    raw = _env(name)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        value = math.nan
    if not (0 <= value if zero else 0 < value) or not value < math.inf:  # also refuses nan
        raise ValueError(f"{name}: {unit}, a number {'from 0 up' if zero else 'above 0'}")
    return value

def settings() -> Settings:
    """The settings as the environment says now (read on every call: tests and tools change it). The working
    directory is asked only when HUB_HOME is relative or unset (a read of the API calls this a dozen times, and each
    system call gives up the interpreter to the other threads serving)."""
    home = os.environ.get("HUB_HOME")
    return _settings(home, os.environ.get("HUB_DATABASE_URL"), os.environ.get("HUB_AGENCIES_URL"),
                     os.environ.get("HUB_API_URL"), None if home and os.path.isabs(home) else os.getcwd())


@lru_cache(maxsize=32)
def _settings(home: str | None, url: str | None, agencies: str | None, api: str | None,
              _cwd: str | None) -> Settings:
    root = Path(home or "var").resolve()
    return Settings(home=root, database_url=url or f"sqlite:///{root / 'hub.db'}",
                    agencies_url=agencies or f"http://127.0.0.1:{DEFAULT_AGENCIES_PORT}/",
                    api_url=api or f"http://127.0.0.1:{DEFAULT_API_PORT}", database_url_given=bool(url))
