"""银行 / banks: deposits and wealth products, monthly balances.

JSON, hmac, batches of 50. Financial: needs the separate consent.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class BankSource(Source):
    contract = SPECS["bank"]
