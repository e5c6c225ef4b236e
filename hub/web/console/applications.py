"""Caseworkers' page of the applications residents made to their department on their phones (申请, /m/apply):
each pending one with its members, and a form to accept it (a request whose members sign on their phones; the
caseworker is taken to its page, with the QR codes) or decline it with a reason the applicant reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.ids import HEX32
from hub.services import applications
from hub.services.errors import Invalid
from hub.web.console.case import Caseworker
from hub.web.console.pages import TEXT, lang_of, page, secured

TEXT.update({
    "applications": ("居民申请", "Applications"),
    "applications_note": ("居民在“掌上办”提交、向本部门申请的救助。受理即为本部门的委托：系统为该家庭创建核对委托，并请各成员在手机上签署授权。",
                          "Assistance residents applied for to this department on their phones. Accepting is the "
                          "department's entrustment: a request is made for the household and each member is asked "
                          "to sign on their phone."),
    "no_applications": ("暂无待受理的申请。", "No pending applications."),
    "accept": ("受理", "Accept"), "decline_app": ("不予受理", "Decline"),
    "decline_reason": ("不予受理的原因（申请人可见）", "Why it is declined (the applicant reads it)"),
    "app_reason_missing": ("请填写不予受理的原因。", "Say why the application is declined."),
    "applicant": ("申请人", "Applicant"),
})

router = APIRouter(prefix="/console", include_in_schema=False)
AppId = Annotated[str, PathParam(pattern=HEX32)]


@router.get("/applications", response_class=HTMLResponse)
def applications_page(request: Request, client: Caseworker, error: str | None = None) -> HTMLResponse:
    return page(request, "case_applications.html", client=client,
                rows=applications.for_department(client.department), error=error)


@router.post("/applications/{application_id}")
def decide(request: Request, application_id: AppId, client: Caseworker,
           decision: Annotated[str, Form(pattern="^(accept|decline)$")],
           reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        request_id = applications.decide(application_id, department=client.department, client_id=client.id,
                                         accept=decision == "accept", reason=reason)
    except Invalid:
        i = 1 if lang_of(request) == "en" else 0
        return page(request, "case_applications.html", client=client, status_code=422,
                    rows=applications.for_department(client.department), error=TEXT["app_reason_missing"][i])
    target = f"/console/requests/{request_id}" if request_id else "/console/applications"
    return secured(RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER), request)
