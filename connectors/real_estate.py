"""不动产登记中心 / real estate registry: properties: use, area, share, location.

XML, hmac, batches of 20.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class RealEstateSource(Source):
    contract = SPECS["real_estate"]
