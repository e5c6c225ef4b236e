"""税务 / tax: income by type and tax, by month.

XML, hmac, batches of 50.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class TaxSource(Source):
    contract = SPECS["tax"]
