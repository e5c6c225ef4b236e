"""人社 / social insurance: contributions and base, pension, unemployment benefit.

JSON, api key, batches of 100, pages of 200 rows.
"""

from connectors.base import Source
from schemas.contracts import SPECS


class SocialInsuranceSource(Source):
    contract = SPECS["social_insurance"]
