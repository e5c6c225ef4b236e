"""公安户籍 / household registration: identity, household, relation, status, address.

JSON, api key, batches of 100.
"""

from connectors.base import Source
from connectors.contracts import SPECS


class HouseholdSource(Source):
    contract = SPECS["household"]
