"""The eleven sources of the hub (DESIGN.md), by key, with the agency and whether the data is financial; and
``remote_registry``, other regions' verification platforms asked over the DCI API (connectors.dci_remote), which a
member consents to like any source."""

from __future__ import annotations

# key -> (agency, what it gives, financial: sensitive personal information under PIPL Art. 28)
SOURCES: dict[str, tuple[str, str, bool]] = {
    "household": ("公安户籍 / household registration", "identity, household, relation, status, address", False),
    "tax": ("税务 / tax", "income by type and tax, by month", False),
    "social_insurance": ("人社 / social insurance", "contributions and base, pension, unemployment benefit", False),
    "provident_fund": ("住房公积金中心 / housing provident fund", "contributions, base, balance, employer", False),
    "real_estate": ("不动产登记中心 / real estate registry", "properties: use, area, share, location", False),
    "market_entity": ("市场监管 / market regulation", "entities and roles: USCC, capital, status", False),
    "vehicles_vessels": ("公安交管与海事 / vehicles and vessels", "type, purchase price, status", False),
    "bank": ("银行 / banks", "deposits and wealth products, monthly balances", True),
    "securities": ("证券公司 / securities firms", "holdings and market value", True),
    "commercial_insurance": ("商业保险 / insurers", "policies with cash value and premiums", True),
    "internet_finance": ("互联网金融 / payment and fund platforms", "money-market and similar balances", True),
    "remote_registry": ("异地核对平台 / other regions' verification platforms (DCI)",
                        "registration, income and screening where the person is registered elsewhere", False),
}
SOURCE_KEYS = tuple(SOURCES)
FINANCIAL_SOURCES = frozenset(k for k, (_, _, financial) in SOURCES.items() if financial)
