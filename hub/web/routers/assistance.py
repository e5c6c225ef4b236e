"""Assistance granted (幸福清单): a department reports what it granted a household it has a case for, and reads
every department's grants for it, so aid is neither missed nor paid twice."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from core.store import AssistanceGrant, session
from hub.services import assistance
from hub.web.deps import Department, HouseholdId
from hub.web import examples as ex
from hub.web.errors import DocumentRoute
from hub.web.models import BAD_BODY, NOT_FOUND, AssistanceIn, AssistanceListOut, AssistanceOut, Purpose

router = APIRouter(route_class=DocumentRoute)
NOT_YOURS = "no household this department has a request for"  # the same whether it exists or not


def _out(g: AssistanceGrant) -> AssistanceOut:
    return AssistanceOut(id=g.id, department=g.department, programme=g.programme, granted_from=g.granted_from,
                         granted_until=g.granted_until, reported_at=g.reported_at,
                         monthly_amount=None if g.monthly_amount_fen is None else Decimal(g.monthly_amount_fen) / 100)


@router.post("/v1/assistance", status_code=201, response_model=AssistanceOut, tags=["assistance"],
             responses={**BAD_BODY, **NOT_FOUND, **ex.answers(ex.ASSISTANCE_OUT, 201)},
             openapi_extra=ex.body(ex.ASSISTANCE_IN))
def post_assistance(body: AssistanceIn, client: Department) -> AssistanceOut:
    """Report assistance granted to a household the department has a request for."""
    try:
        grant_id = assistance.report(household_ref=body.household_id, department=client.department,
                                     client_id=client.id, programme=body.programme, granted_from=body.granted_from,
                                     granted_until=body.granted_until, request_id=body.request_id,
                                     monthly_amount_fen=None if body.monthly_amount is None
                                     else int(body.monthly_amount * 100))
    except assistance.NotYourHousehold:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_YOURS) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    with session() as s:
        return _out(s.get(AssistanceGrant, grant_id))


@router.get("/v1/households/{household_id}/assistance", response_model=AssistanceListOut, tags=["assistance"],
            responses={**NOT_FOUND, **ex.answers(ex.ASSISTANCE_LIST_OUT)})
def get_assistance(household_id: HouseholdId, client: Department,
                   purpose: Annotated[Purpose, Query(description="why the department reads the list")]
                   ) -> AssistanceListOut:
    try:
        grants = assistance.household_list(household_id, department=client.department, client_id=client.id,
                                           purpose=purpose)
    except assistance.NotYourHousehold:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_YOURS) from None
    return AssistanceListOut(household_id=household_id, grants=[_out(g) for g in grants])
