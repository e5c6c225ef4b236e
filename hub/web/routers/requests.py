"""A department's verification requests: submit one (its verification starts when the hub runs with Airflow),
look a household up from one member's ID number (一证通办), follow a request, list the department's own."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from core.ids import HEX32
from core.settings import settings
from hub.services import lookup
from hub.services.residents import invitation_links
from hub.services.requests import RequestView, create, department_requests, request_view, trigger_verification
from hub.web.deps import Department, Limit, RequestId, in_range
from hub.web import examples as ex
from hub.web.errors import DocumentRoute, error_response
from hub.web.models import (
    BAD_BODY,
    NOT_FOUND,
    RETRY_AFTER,
    ErrorOut,
    InvitationOut,
    InvitationsOut,
    LookupIn,
    LookupMember,
    LookupOut,
    RequestIn,
    RequestOut,
    RequestsOut,
    RequestSummary,
)

router = APIRouter(route_class=DocumentRoute)


def _out(view: RequestView) -> RequestOut:
    return RequestOut(**asdict(view))


@router.post("/v1/requests", status_code=201, response_model=RequestOut, tags=["requests"],
             responses={**BAD_BODY, **ex.answers(ex.REQUEST_OUT, 201)}, openapi_extra=ex.body(ex.REQUEST_IN))
def post_request(body: RequestIn, client: Department) -> RequestOut:
    auth = body.authorization
    if auth is not None and not (in_range(auth.valid_from) and in_range(auth.valid_until)):
        raise HTTPException(422, {"problems": ["authorization: valid_from and valid_until are out of range"]})
    doc = body.model_dump(mode="json", exclude_none=True)
    request_id = create(doc, department=client.department, client_id=client.id)
    view = _out(request_view(request_id, client.department))
    if view.status == "signing":  # it starts when every member has answered (hub.services.residents)
        return view
    return view.model_copy(update={"dag_run_id": trigger_verification(request_id)})


@router.get("/v1/requests", response_model=RequestsOut, tags=["requests"], responses=ex.answers(ex.REQUESTS_OUT))
def list_requests(client: Department, limit: Limit = 50,
                  before: Annotated[str | None, Query(pattern=HEX32, description="continue below this request "
                                                      "(from `next_before`)")] = None,
                  status_: Annotated[Literal["signing", "received", "running", "published", "refused", "failed"] | None,
                                     Query(alias="status")] = None) -> RequestsOut:
    """The department's own requests, newest first."""
    rows = department_requests(client.department, before=before, limit=limit, status_=status_)
    items = [RequestSummary(**asdict(r)) for r in rows]
    return RequestsOut(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.post("/v1/household-lookup", response_model=LookupOut, tags=["requests"],
             openapi_extra=ex.body(ex.LOOKUP_IN), responses={
    **BAD_BODY, **ex.answers(ex.LOOKUP_OUT),
    404: {"model": ErrorOut, "description": "not_registered: household registration does not know the "
          "person"},
    422: {"model": ErrorOut, "description": "invalid_field (the body's shape: details lists the fields), or "
          "invalid_lookup: the field at fault (no signed form, a document that is not what its media type says or of the wrong "
          "size, a hash that is not the form's, an ID number's check character, the case number)"},
    429: {"model": ErrorOut, "description": "lookup_rate_limited: the department made HUB_LOOKUP_PER_HOUR "
          "lookups within the last hour (or the client's request rate): wait as Retry-After says",
          "headers": RETRY_AFTER},
    503: {"model": ErrorOut, "description": "source_unavailable: household registration is unavailable: "
          "retry after Retry-After", "headers": RETRY_AFTER}})
def post_household_lookup(body: LookupIn, client: Department) -> LookupOut:
    """一证通办: the members of a household from household registration, given one member's ID number, the
    department's case number and that member's signed authorization form itself (PDF, JPEG or PNG, base64),
    which the hub checks and keeps encrypted. The ID number travels in the body only; every lookup, refused or
    not, is a ledger entry with pseudonyms and the form's SHA-256."""
    form = None if body.signed_form is None else lookup.form_from_base64(body.signed_form.media_type,
                                                                         body.signed_form.content_base64)
    try:
        found = lookup.household_members(body.id_number, department=client.department, client_id=client.id,
                                         purpose=body.purpose, case_ref=body.case_ref, signed_form=form,
                                         evidence_sha256=body.evidence_sha256)
    except lookup.BadLookup as exc:
        return error_response(422, "invalid_lookup", str(exc), exc.field)
    except lookup.RateLimited as exc:
        return error_response(status.HTTP_429_TOO_MANY_REQUESTS, "lookup_rate_limited", str(exc),
                              headers={"Retry-After": str(exc.retry_after)})
    except lookup.NotRegistered:
        return error_response(status.HTTP_404_NOT_FOUND, "not_registered",
                              "household registration does not know this person", "id_number")
    except lookup.LookupUnavailable as exc:
        return error_response(status.HTTP_503_SERVICE_UNAVAILABLE, "source_unavailable", f"household registration "
                              f"is unavailable ({exc.failure}); try again later", headers={"Retry-After": "30"})
    return LookupOut(members=[LookupMember(id_number=m.id_number, name=m.name, sex=m.sex, birth_date=m.birth_date,
                                           relation=m.relation, status=m.status) for m in found])


@router.get("/v1/requests/{request_id}/invitations", response_model=InvitationsOut, tags=["requests"],
            responses={**NOT_FOUND, **ex.answers(ex.INVITATIONS_OUT)})
def get_invitations(request_id: RequestId, client: Department) -> InvitationsOut:
    """The members' signing links of a request made with `mobile_signing` (码上办), with each one's state: show
    each member their own link as a QR code. Empty for a request with an uploaded authorization."""
    base = settings().api_url.rstrip("/")
    items = [InvitationOut(member=i.member, relation=i.relation, state=i.state, minor=i.minor,
                           expires_at=i.expires_at, link=base + i.path)
             for i in invitation_links(request_id, client.department)]
    return InvitationsOut(request_id=request_id, items=items)


@router.get("/v1/requests/{request_id}", response_model=RequestOut, tags=["requests"],
            responses={**NOT_FOUND, **ex.answers(ex.REQUEST_OUT)})
def get_request(request_id: RequestId, client: Department) -> RequestOut:
    return _out(request_view(request_id, client.department))
