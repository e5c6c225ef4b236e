"""互联网金融 / payment and fund platforms: money-market and similar balances.

JSON, hmac, batches of 100. Financial: needs the separate consent.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class InternetFinanceSource(Source):
    contract = SPECS["internet_finance"]
