"""Every declared source, and where to find its agency."""

from __future__ import annotations

import logging
from functools import lru_cache

import requests

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

log = logging.getLogger(__name__)

SOURCES: dict[str, type[Source]] = {
    cls.contract.key: cls
    for cls in (HouseholdSource, TaxSource, SocialInsuranceSource, ProvidentFundSource, RealEstateSource,
                MarketEntitySource, VehiclesVesselsSource, BankSource, SecuritiesSource, CommercialInsuranceSource,
                InternetFinanceSource)
}


# Sources that are not agencies: other regions' verification platforms, asked over the DCI API
# (connectors.dci_remote), configured by HUB_DCI_PEERS; not in SOURCES, whose members are agencies.
FEDERATED = ("remote_registry",)


class UnknownSource(KeyError):
    pass


def source_class(key: str) -> type[Source]:
    try:
        return SOURCES[key]
    except KeyError:
        raise UnknownSource(f"unknown source {key!r}; known: {', '.join(sorted(SOURCES))}") from None


@lru_cache(maxsize=8)
def _index(agencies_url: str) -> dict[str, str]:
    resp = requests.get(agencies_url, timeout=5)
    resp.raise_for_status()
    return {s["key"]: s["base_url"] for s in resp.json()["sources"]}


def base_url(key: str, agencies_url: str) -> str:
    """Base URL of a source's agency, read from the agencies' index (HUB_AGENCIES_URL)."""
    if key in FEDERATED:  # its addresses are the peers'
        from connectors.dci_remote import PEERS_BASE

        return PEERS_BASE
    return _index(agencies_url)[key]


def connector(key: str, base: str, secret: str | None = None, policy=None) -> Source:
    """A connector for ``key`` at ``base``; the credential is ``secret`` (from an Airflow connection) or the one
    in HUB_HOME's credentials file."""
    if key in FEDERATED:  # the DCI client, with the peers of HUB_DCI_PEERS
        from hub.federation.client import remote_registry

        return remote_registry(policy=policy)
    from connectors.auth import Credential, credentials_path, load_credentials
    from core.settings import settings
    from core.crypto import keyring

    cls = source_class(key)
    credential = (Credential(cls.contract.auth, secret) if secret
                  else load_credentials(credentials_path(settings().home))[key])
    return cls(base, credential=credential, signing_key=keyring().signing_key, policy=policy)
