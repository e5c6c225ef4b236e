"""The console's one error page: what the JSON API answers with its error body (hub.web.errors), the console answers
with a page in the user's language (error.html): a title and what happened in words for each status, what to fix
for input at fault, a reference for an unexpected error, and ways back (the form a POST came from, the page one
level up, the console's home). Never the raw JSON, a traceback or a value sent (the problems name fields only).

hub.web.console.pages.install installs it over the app's handlers (hub.web.errors, hub.web.dci): a console path
gets the page, every other path the handler that was there before. The sign-in redirect (SignInRequired) stays
its own handler."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent.ledger import LedgerUnavailable
from hub.services.errors import Invalid, ServiceError
from hub.web.console.pages import COOKIE, FORM_OF, TEXT, lang_of, page, secured, session_client
from hub.web.errors import UNAVAILABLE_RETRY_S, json_path, problem_of, reference, status_of

TEXT.update({
    "err_title_400": ("无法读取提交的内容", "What was sent could not be read"),
    "err_400": ("提交的内容无法读取，请返回后重新填写。", "What was sent could not be read. Go back and fill in the form again."),
    "err_title_403": ("无权访问", "Not permitted"),
    "err_403": ("您当前的角色无权使用此页面或操作。如确需使用，请联系系统管理员。",
                "Your role may not use this page or action. If you need it, ask your administrator."),
    "err_title_404": ("未找到", "Not found"),
    "err_404": ("您要找的页面或记录不存在，或不对您开放。", "The page or record you asked for does not exist, or is not open to you."),
    "err_title_405": ("不支持此操作", "Not supported here"),
    "err_405": ("此页面不支持这种操作方式，请从页面上的链接或按钮进入。",
                "This page does not take this kind of request: use the links and buttons on the pages."),
    "err_title_409": ("暂时无法完成", "Not possible yet"),
    "err_409": ("该记录目前的状态还不允许此操作，请稍后再试。", "The record is not yet in a state that allows this. Try again later."),
    "err_title_413": ("内容过大", "Too large"),
    "err_413": ("提交的内容超过了允许的大小。", "What was sent is larger than allowed."),
    "err_title_422": ("请修改以下内容", "Please correct the following"),
    "err_422": ("提交的内容有以下问题，请返回修改后重新提交：", "What was sent has these problems; go back, correct them and send again:"),
    "err_field_bad": ("缺失或不符合要求", "missing or not acceptable"),
    "err_title_429": ("操作过于频繁", "Too many requests"),
    "err_429": ("请稍候再试（约 {n} 秒后）。", "Please try again later (in about {n} seconds)."),
    "err_title_500": ("出错了", "Something went wrong"),
    "err_500": ("系统出现意外错误，您的操作可能没有完成。如需帮助，请将下面的参考编号告知系统管理员。",
                "An unexpected error occurred; what you did may not have been done. If you need help, give your "
                "administrator the reference below."),
    "err_reference": ("参考编号：", "Reference:"),
    "err_title_503": ("暂时无法服务", "Temporarily unavailable"),
    "err_503": ("数据存储暂时不可用，请稍后（约 {n} 秒后）再试。",
                "The hub's data store is not available right now. Please try again shortly (in about {n} seconds)."),
    "err_title_other": ("无法完成请求", "The request could not be completed"),
    "err_other": ("请返回后重试。", "Go back and try again."),
    "err_back_form": ("返回填写页面", "Back to the form"),
    "err_up": ("返回上一级", "Up one level"),
    "err_home": ("返回控制台首页", "Console home"),
    "err_signin_other": ("以其他账号登录", "Sign in with another account"),
})
WORDED = {400, 403, 404, 405, 409, 413, 422, 429, 500, 503}
# the fields the console's forms and queries name, in words; a member's field is "member 1 · ID number"
FIELD_LABELS = {
    "purpose": ("用途", "Purpose"), "case_ref": ("业务编号", "Case number"), "id_number": ("身份证号", "ID number"),
    "name": ("姓名", "Name"), "relation": ("与申请人关系", "Relation"), "token": ("访问令牌", "Access token"),
    "sources": ("核对数据来源", "Sources"), "members": ("家庭成员", "Members"), "before": ("分页位置", "Page position"),
    "days": ("统计天数", "Days"), "source": ("数据来源", "Source"), "check": ("校验项", "Check"),
    "signed_form": ("签字授权书", "Signed form"), "evidence_sha256": ("签字授权书", "Signed form"),
}
_MEMBER = re.compile(r"^(?:.*\.)?(members|consents)\[(\d+)\]\.?(.*)$")


def _field_label(field: str | None, i: int) -> str:
    if not field:
        return ""
    member = _MEMBER.match(field)
    if member:  # people count from 1 on a page; the JSON path counts from 0
        n, rest = int(member.group(2)) + 1, member.group(3).split(".")[-1]
        who = (f"第 {n} 位成员", f"Member {n}")[i]
        return f"{who} · {FIELD_LABELS[rest][i]}" if rest in FIELD_LABELS else who
    last = field.split(".")[-1]
    return FIELD_LABELS.get(last, (last, last))[i]


def _console(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


def _way_back(request: Request) -> tuple[str | None, str]:
    """Where the user came from: the form a POST came from (pages.FORM_OF), else the nearest page above this one
    that the console serves; None when that would be the home (linked anyway)."""
    path = request.url.path
    if request.method != "GET" and path in FORM_OF:
        return FORM_OF[path], "err_back_form"
    pages = [r for r in request.app.routes if isinstance(r, APIRoute) and "GET" in r.methods
             and r.path.startswith("/console/") and "{" not in r.path]
    parts = path.rstrip("/").split("/")
    for n in range(len(parts) - 1, 2, -1):  # never above /console/
        up = "/".join(parts[:n])
        for candidate in (up, up + "/"):
            if candidate != path and any(r.path_regex.match(candidate) for r in pages):
                return candidate, "err_up"
    return None, "err_up"


async def _client(request: Request, status_code: int):
    """The signed-in client, for the page's navigation; none when the store is what failed."""
    if status_code in (500, 503):
        return None
    try:
        return await run_in_threadpool(session_client, request.cookies.get(COOKIE))
    except Exception:  # the page says what went wrong first; the navigation can do without
        return None


async def render(request: Request, status_code: int, problems=(), headers: dict | None = None,
                 ref: str | None = None) -> Response:
    i = 1 if lang_of(request) == "en" else 0
    key = str(status_code) if status_code in WORDED else "other"
    fix = []
    if status_code == 422:
        for p in problems:
            said = p.message[len(p.field) + 2:] if p.field and p.message.startswith(f"{p.field}: ") else p.message
            fix.append({"field": p.field, "label": _field_label(p.field, i),  # the field by its label, not its path
                        "text": said if i else TEXT["err_field_bad"][0]})
    back, back_label = _way_back(request)
    retry = (headers or {}).get("Retry-After", "")
    error = {"status": status_code, "title": f"err_title_{key}", "message": f"err_{key}", "fix": fix,
             "reference": ref, "back": back, "back_label": back_label, "retry_after": retry or "30"}
    resp = page(request, "error.html", status_code=status_code, client=await _client(request, status_code),
                error=error)
    for name, value in (headers or {}).items():
        if name.lower() in ("retry-after", "allow", "www-authenticate"):
            resp.headers[name] = value
    return resp


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    return await render(request, exc.status_code, problem_of(exc.status_code, exc.detail), exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if errors and all(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors):
        return await render(request, 404)  # a mistyped address: no such page, not a form to correct
    return await render(request, 422, problem_of(422, {"problems": [
        f"{json_path(e.get('loc', ()))}: {e.get('msg', '')}" for e in errors]}))


async def _service_error(request: Request, exc: ServiceError) -> Response:
    code = status_of(exc)
    if code is None:
        return await _unexpected(request, exc)
    detail = {"problems": exc.problems} if isinstance(exc, Invalid) and exc.problems else exc.detail
    return await render(request, code, problem_of(code, detail))


async def _unavailable(request: Request, _exc: Exception) -> Response:
    return await render(request, 503, headers={"Retry-After": str(UNAVAILABLE_RETRY_S)})


async def _unexpected(request: Request, exc: Exception) -> Response:
    ref = reference(request, exc)
    try:
        return await render(request, 500, ref=ref)
    except Exception:  # the page itself failed: still no traceback, still the reference
        return secured(HTMLResponse(f"<!doctype html><title>500</title><p>500 · {ref}</p>", status_code=500),
                       request)


OWN = {StarletteHTTPException: _http_error, RequestValidationError: _invalid, ServiceError: _service_error,
       LedgerUnavailable: _unavailable, OperationalError: _unavailable, Exception: _unexpected}


def install(app: FastAPI) -> None:
    """Over each handler of errors the app has (hub.web.errors, hub.web.dci): the page for console paths, the
    handler before for the others."""
    for kind, own in OWN.items():
        previous = app.exception_handlers.get(kind)

        async def handler(request: Request, exc: Exception, own=own, previous=previous) -> Response:
            if _console(request):
                return await own(request, exc)
            if previous is None:
                raise exc
            return await previous(request, exc)

        app.add_exception_handler(kind, handler)
