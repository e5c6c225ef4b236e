"""公安交管与海事 / vehicles and vessels: type, purchase price, status.

CSV (GBK), hmac, batches of 100.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class VehiclesVesselsSource(Source):
    contract = SPECS["vehicles_vessels"]
