"""Applications residents start on their phones (申请, /m/apply): a department lists those made to it and accepts
(a request is made and its members are asked to sign on their phones) or declines each, with a reason."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from core.ids import HEX32
from hub.services import applications
from hub.web import examples as ex
from hub.web.deps import Department
from hub.web.errors import DocumentRoute
from hub.web.models import (BAD_BODY, NOT_FOUND, ApplicationMember, ApplicationOut, ApplicationsOut, DecisionIn,
                            DecisionOut, ErrorOut)

router = APIRouter(route_class=DocumentRoute)
ApplicationId = Annotated[str, PathParam(pattern=HEX32, description="the application's id")]


def _out(a: applications.ApplicationView) -> ApplicationOut:
    return ApplicationOut(id=a.id, department=a.department, programme=a.programme, status=a.status, reason=a.reason,
                          request_id=a.request_id, created_at=a.created_at.isoformat(),
                          members=[ApplicationMember(**m) for m in a.members])


@router.get("/v1/applications", response_model=ApplicationsOut, tags=["applications"],
            responses=ex.answers(ex.APPLICATIONS_OUT))
def list_applications(client: Department, status_: Annotated[Literal["pending", "accepted", "declined"] | None,
                                                            Query(alias="status")] = "pending") -> ApplicationsOut:
    """Applications residents made to this department (default: the pending ones), newest first."""
    return ApplicationsOut(items=[_out(a) for a in applications.for_department(client.department, status_)])


@router.get("/v1/applications/{application_id}", response_model=ApplicationOut, tags=["applications"],
            responses={**NOT_FOUND, **ex.answers(ex.APPLICATION_OUT)})
def get_application(application_id: ApplicationId, client: Department) -> ApplicationOut:
    return _out(applications.of_department(application_id, client.department))


@router.post("/v1/applications/{application_id}/decision", response_model=DecisionOut, tags=["applications"],
             responses={**BAD_BODY, **NOT_FOUND, **ex.answers(ex.DECISION_OUT),
                        409: {"model": ErrorOut, "description": "decided already"}},
             openapi_extra=ex.body(ex.DECISION_IN))
def decide(application_id: ApplicationId, body: DecisionIn, client: Department) -> DecisionOut:
    """Accept (the department's entrustment: a request with `mobile_signing`; its members are asked to sign) or
    decline with a reason. Once only."""
    request_id = applications.decide(application_id, department=client.department, client_id=client.id,
                                     accept=body.decision == "accept", reason=body.reason, case_ref=body.case_ref,
                                     sources=body.sources)
    return DecisionOut(id=application_id, status="accepted" if body.decision == "accept" else "declined",
                       request_id=request_id)
