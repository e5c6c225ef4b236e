"""市场监管 / market regulation: entities and roles: USCC, capital, status.

JSON, api key, batches of 100, pages of 100 rows.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class MarketEntitySource(Source):
    contract = SPECS["market_entity"]
