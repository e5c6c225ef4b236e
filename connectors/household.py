"""公安户籍 / household registration: identity, household, relation, status, address.

JSON, api key, batches of 100. A second operation, 户成员查询 (``members_of``), answers every member of one
person's household. Unlike ``fetch`` it takes no gate decision: its only caller is hub.services.lookup (一证通办), which
records the basis of each query (the hash of the applicant's signed authorization form) in the ledger.
"""

from __future__ import annotations

import logging
import time

from connectors.base import AgencyError, Failure, FetchResult, Source
from connectors.signing import count_mismatches
from connectors.wire import build_request
from schemas.contracts import SPECS, from_wire

log = logging.getLogger(__name__)


class HouseholdSource(Source):
    contract = SPECS["household"]

    def members_of(self, id_number: str, auth_ref: str) -> list[dict]:
        """Canonical rows of every member of the household of ``id_number``; [] when the agency does not know
        the person. Same transport, signing, signed answers, retries, circuit breaker and deadline as ``fetch``; a failure
        raises AgencyError (source and failure kind only)."""
        spec = self.contract
        result = FetchResult(source=self.key, status="complete", requested=1)
        deadline = time.monotonic() + self.policy.deadline
        try:
            signed = self._call(build_request(spec, [id_number]), auth_ref, deadline, result,
                                relative=spec.members_path)
            answer = self._read(signed)
            if count_mismatches(signed.manifest, answer.rows, spec.id_field):
                raise AgencyError(self.key, Failure.COUNT_MISMATCH)
            if id_number in answer.not_found:
                return []
            if not answer.rows:  # neither answered nor declared unknown
                raise AgencyError(self.key, Failure.BAD_RESPONSE, "unanswered")
        except AgencyError as exc:
            log.warning("household members query to %s failed: %s", self.key, exc.failure.value)
            raise
        return [from_wire(spec, r) for r in answer.rows]
