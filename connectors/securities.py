"""证券公司 / securities firms: holdings and market value.

XML, api key, batches of 50. Financial: needs the separate consent.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class SecuritiesSource(Source):
    contract = SPECS["securities"]
