"""商业保险 / insurers: policies with cash value and premiums.

CSV (GBK), api key, batches of 100, pages of 100 rows. Financial: needs the separate consent.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class CommercialInsuranceSource(Source):
    contract = SPECS["commercial_insurance"]
