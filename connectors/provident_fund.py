"""住房公积金中心 / housing provident fund: contributions, base, balance, employer.

CSV (GBK), api key, batches of 200.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class ProvidentFundSource(Source):
    contract = SPECS["provident_fund"]
