"""The eleven sources of the hub (DESIGN.md), by key, with their names in Chinese and English, the agency, what it
gives and whether the data is financial; and ``remote_registry``, other regions' verification platforms asked over
the DCI API (connectors.dci_remote), which a member consents to like any source.

The one list of sources: the connectors, the suites, the consent gate, the console and the DAGs take their keys and
names from here (through schemas.vocabulary). Imports nothing: a DAG file may read it at parse time.
"""

from __future__ import annotations

from typing import NamedTuple


class Source(NamedTuple):
    zh: str  # short name, as the console shows it
    en: str
    agency: str  # who holds the data
    gives: str  # what it gives, per person
    financial: bool  # sensitive personal information under PIPL Art. 28: a separate consent (Art. 29)
    federated: bool = False  # other regions' platforms over the DCI API, not an agency of this city


SOURCES: dict[str, Source] = {
    "household": Source("户籍", "household registration", "公安户籍 / household registration",
                        "identity, household, relation, status, address", False),
    "tax": Source("税务", "tax", "税务 / tax", "income by type and tax, by month", False),
    "social_insurance": Source("社会保险", "social insurance", "人社 / social insurance",
                               "contributions and base, pension, unemployment benefit", False),
    "provident_fund": Source("住房公积金", "housing provident fund", "住房公积金中心 / housing provident fund",
                             "contributions, base, balance, employer", False),
    "real_estate": Source("不动产", "real estate", "不动产登记中心 / real estate registry",
                          "properties: use, area, share, location", False),
    "market_entity": Source("市场主体", "market entities", "市场监管 / market regulation",
                            "entities and roles: USCC, capital, status", False),
    "vehicles_vessels": Source("车辆船舶", "vehicles and vessels", "公安交管与海事 / vehicles and vessels",
                               "type, purchase price, status", False),
    "bank": Source("银行", "banks", "银行 / banks", "deposits and wealth products, monthly balances", True),
    "securities": Source("证券", "securities", "证券公司 / securities firms", "holdings and market value", True),
    "commercial_insurance": Source("商业保险", "commercial insurance", "商业保险 / insurers",
                                   "policies with cash value and premiums", True),
    "internet_finance": Source("互联网金融", "internet finance", "互联网金融 / payment and fund platforms",
                               "money-market and similar balances", True),
    "remote_registry": Source("异地核对", "other regions' platforms",
                              "异地核对平台 / other regions' verification platforms (DCI)",
                              "registration, income and screening where the person is registered elsewhere", False,
                              federated=True),
}
SOURCE_KEYS = tuple(SOURCES)
# the agencies of this city (each a connector and a simulated agency), in the order of DESIGN.md
AGENCY_SOURCES = tuple(k for k, s in SOURCES.items() if not s.federated)
# not agencies: other regions' verification platforms, asked over the DCI API (configured by HUB_DCI_PEERS)
FEDERATED_SOURCES = tuple(k for k, s in SOURCES.items() if s.federated)
FINANCIAL_SOURCES = frozenset(k for k, s in SOURCES.items() if s.financial)
SOURCE_NAMES: dict[str, tuple[str, str]] = {k: (s.zh, s.en) for k, s in SOURCES.items()}  # key -> (zh, en)
