"""Every agency's declared source, and where to find its agency.

Only agencies: the federated sources (FEDERATED: other regions' platforms, asked over the DCI API) are named here but
built by the hub (hub.federation.sources), which wires them to its store, keys and ledger.

The agencies' index is cached per address; ``reset`` forgets it (tests/connectors/conftest.py, around each test).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import requests

from connectors.auth import Credential, credentials_path, load_credentials
from connectors.bank import BankSource
from connectors.base import Source
from connectors.commercial_insurance import CommercialInsuranceSource
from connectors.household import HouseholdSource
from connectors.internet_finance import InternetFinanceSource
from connectors.market_entity import MarketEntitySource
from connectors.provident_fund import ProvidentFundSource
from connectors.real_estate import RealEstateSource
from connectors.securities import SecuritiesSource
from connectors.social_insurance import SocialInsuranceSource
from connectors.tax import TaxSource
from connectors.vehicles_vessels import VehiclesVesselsSource
from core.crypto import keyring
from core.settings import settings
from schemas.sources import FEDERATED_SOURCES

log = logging.getLogger(__name__)

SOURCES: dict[str, type[Source]] = {
    cls.contract.key: cls
    for cls in (HouseholdSource, TaxSource, SocialInsuranceSource, ProvidentFundSource, RealEstateSource,
                MarketEntitySource, VehiclesVesselsSource, BankSource, SecuritiesSource, CommercialInsuranceSource,
                InternetFinanceSource)
}


# Sources that are not agencies: other regions' verification platforms, asked over the DCI API
# (connectors.dci_remote), configured by HUB_DCI_PEERS; not in SOURCES, whose members are agencies.
FEDERATED = FEDERATED_SOURCES


class UnknownSource(KeyError):
    pass


def _no_federated(key: str) -> None:
    if key in FEDERATED:
        raise UnknownSource(f"{key!r} is no agency's source: hub.federation.sources builds it")


def source_class(key: str) -> type[Source]:
    _no_federated(key)
    try:
        return SOURCES[key]
    except KeyError:
        raise UnknownSource(f"unknown source {key!r}; known: {', '.join(sorted(SOURCES))}") from None


@lru_cache(maxsize=8)
def _document(agencies_url: str) -> dict:
    resp = requests.get(agencies_url, timeout=5)
    resp.raise_for_status()
    return resp.json()


def _index(agencies_url: str) -> dict[str, str]:
    return {s["key"]: s["base_url"] for s in _document(agencies_url)["sources"]}


def reset() -> None:
    """Forget the agencies' indexes read so far (the next ``base_url`` reads its index again)."""
    _document.cache_clear()


def identity_issuer(agencies_url: str) -> str:
    """The issuer of the identity provider the agencies' index lists (``identity``: the simulated 统一身份认证);
    KeyError when it lists none."""
    return _document(agencies_url)["identity"]["issuer"]


def base_url(key: str, agencies_url: str) -> str:
    """Base URL of a source's agency, read from the agencies' index (HUB_AGENCIES_URL)."""
    _no_federated(key)
    return _index(agencies_url)[key]


def connector(key: str, base: str, secret: str | None = None, policy=None) -> Source:
    """A connector for ``key`` at ``base``; the credential is ``secret`` (from an Airflow connection) or the one
    in HUB_HOME's credentials file."""
    cls = source_class(key)
    credential = (Credential(cls.contract.auth, secret) if secret
                  else load_credentials(credentials_path(settings().home))[key])
    return cls(base, credential=credential, signing_key=keyring().signing_key, policy=policy)
