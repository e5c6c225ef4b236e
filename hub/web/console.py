"""The web console served by ``hub api`` under /console/: sign-in, and the pages of each role.

Sign-in takes the same token as the API (``hub clients create``) once; the browser then holds a random session
token in an HttpOnly, SameSite=Strict cookie, of which the store keeps only the SHA-256. Pages are Chinese by
default, English with ``?lang=en`` (remembered in a cookie).

Staff pages (here): sources' health, freshness and validation pass rates; validation runs with their GX Data Docs
(rendered from the stored, value-free results); the quarantine with the reason of every rejected row; alerts.
Caseworkers' pages are in hub/web/console_case.py, auditors' in hub/web/console_audit.py. Staff and auditor pages show
pseudonyms only; a caseworker sees the names and ID numbers of the households of their own department's cases.
Tables staff and auditors would want in a spreadsheet have CSV and Excel downloads (hub/services/export.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, func, select

from consent import ledger
from hub.services import clients
from hub.services.export import Column, download
from core.ids import MAX_ID, NO_NUL
from core.store import ConsoleSession, QuarantinedRow, ValidationRun, session, utcnow

COOKIE, LANG_COOKIE = "hub_session", "hub_lang"
SESSION_HOURS = 8
PAGE = 50
# a strict policy: no outside scripts, styles, images or frames on any console page
CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; script-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

TEXT = {
    "title": ("社会救助家庭经济状况核对平台", "Social assistance verification hub"),
    "signin": ("登录", "Sign in"),
    "signout": ("退出", "Sign out"),
    "token": ("访问令牌", "Access token"),
    "token_help": ("使用 hub clients create 发放的令牌登录。", "Sign in with a token from `hub clients create`."),
    "bad_token": ("令牌无效或已停用。", "The token is not valid or no longer active."),
    "home": ("首页", "Home"),
    "validation": ("数据校验结果", "Validation results"),
    "quarantine": ("隔离区", "Quarantine"),
    "alerts": ("告警", "Alerts"),
    "no_alerts": ("没有未处理的告警。", "No open alerts."),
    "dag": ("流程", "DAG"),
    "task": ("任务", "Task"),
    "error": ("错误", "Error"),
    "try": ("尝试", "Try"),
    "acknowledge": ("确认", "Acknowledge"),
    "sources_health": ("数据源状态", "Sources"),
    "up": ("正常", "up"),
    "down": ("异常", "down"),
    "latency": ("延迟（毫秒）", "Latency (ms)"),
    "fresh": ("最近完整获取", "Last complete fetch"),
    "not_yet": ("管理员请使用 API（/v1/clients）或命令行（hub clients）管理账号。", "Administrators manage clients through the API (/v1/clients) or the command line (hub clients)."),
    "when": ("时间", "When"),
    "source": ("数据来源", "Source"),
    "suite": ("校验套件", "Suite"),
    "run": ("运行", "Run"),
    "rows": ("行数", "Rows"),
    "failed": ("未通过", "Failed"),
    "result": ("结果", "Result"),
    "passed": ("通过", "passed"),
    "not_passed": ("未通过", "failed"),
    "docs": ("数据文档", "Data Docs"),
    "only_failed": ("仅显示未通过", "failed only"),
    "filter": ("筛选", "Filter"),
    "all": ("全部", "all"),
    "check": ("校验项", "Check"),
    "reason": ("原因", "Reason"),
    "batch": ("批次", "Batch"),
    "row": ("行号", "Row"),
    "person": ("人员（假名）", "Person (pseudonym)"),
    "newer": ("较新", "Newer"),
    "older": ("较早", "Older"),
    "of": ("共", "of"),
    "across": ("跨数据源", "across sources"),
    "back": ("返回校验结果列表", "Back to the validation results"),
    "unusual": ("异常查阅", "Unusual reads"),
    "sources_page": ("数据源状态与校验通过率", "Sources: health, freshness, validation"),
    "pass_rate": ("校验通过率", "Validation pass rate"),
    "runs": ("校验次数", "Validation runs"),
    "quarantined_rows": ("隔离行数", "Rows quarantined"),
    "last_days": ("统计天数", "Days"),
    "never": ("从未", "never"),
    "download": ("下载", "Download"),
    "csv": ("CSV 表格", "CSV"),
    "excel": ("Excel 表格", "Excel"),
    "requests": ("核对委托", "Requests"),
    "new_request": ("发起核对", "New request"),
    "audit": ("审计", "Audit"),
    "status": ("状态", "Status"),
    "purpose": ("用途", "Purpose"),
    "case_ref": ("业务编号", "Case number"),
    "created": ("创建时间", "Created"),
    "household": ("家庭", "Household"),
    "signed_in_as": ("当前身份", "Signed in as"),
    "gx_note": ("以下为 Great Expectations 生成的数据文档（仅含计数，不含任何数据值）。",
                "Below: the Great Expectations Data Docs of this run (counts only, no data values)."),
}
SOURCES = {
    "household": ("户籍", "household registration"), "tax": ("税务", "tax"),
    "social_insurance": ("社会保险", "social insurance"), "provident_fund": ("住房公积金", "housing provident fund"),
    "real_estate": ("不动产", "real estate"), "market_entity": ("市场主体", "market entities"),
    "vehicles_vessels": ("车辆船舶", "vehicles and vessels"), "bank": ("银行", "banks"),
    "securities": ("证券", "securities"), "commercial_insurance": ("商业保险", "commercial insurance"),
    "internet_finance": ("互联网金融", "internet finance"),
}

PURPOSE_NAMES = {
    "dibao": ("最低生活保障", "minimum living guarantee"), "low_income": ("低收入家庭", "low-income family"),
    "tekun": ("特困人员供养", "support for persons in extreme poverty"), "temporary": ("临时救助", "temporary assistance"),
    "medical": ("医疗救助", "medical assistance"), "housing": ("住房救助", "housing assistance"),
    "education": ("教育救助", "education assistance"), "employment": ("就业救助", "employment assistance"),
    "expenditure_poverty": ("支出型困难家庭", "expenditure poverty"),
}
RELATION_NAMES = {
    "head": ("户主", "head"), "spouse": ("配偶", "spouse"), "son": ("子", "son"), "daughter": ("女", "daughter"),
    "child": ("子女", "child"), "grandchild": ("孙子女", "grandchild"), "parent": ("父母", "parent"),
    "other": ("其他", "other"),
}
STATUS_NAMES = {
    "normal": ("正常", "normal"), "deceased": ("死亡", "deceased"), "moved_out": ("迁出", "moved out"),
    "received": ("已受理", "received"), "running": ("核对中", "running"), "published": ("已出具报告", "published"),
    "refused": ("未获授权", "refused"), "failed": ("失败", "failed"), "complete": ("完整", "complete"),
    "incomplete": ("不完整", "incomplete"), "unavailable": ("不可用", "unavailable"),
    "yes": ("符合", "yes"), "no": ("不符合", "no"), "needs_review": ("需人工复核", "needs review"),
}
KIND_NAMES = {
    "entrustment.received": ("收到委托", "entrustment received"),
    "authorization.granted": ("授权登记", "authorization granted"),
    "authorization.revoked": ("撤回授权", "authorization revoked"),
    "authorization.expired": ("授权到期", "authorization expired"),
    "consent.allowed": ("授权核验通过", "consent allowed"), "consent.refused": ("授权核验拒绝", "consent refused"),
    "household.lookup": ("户籍成员查询", "household lookup"),
    "fetch.completed": ("数据获取", "data fetched"), "fetch.skipped": ("未获取", "fetch skipped"),
    "validation.completed": ("数据校验", "data validated"), "record.published": ("出具核对报告", "record published"),
    "publish.refused": ("未出具报告", "publication refused"), "publish.failed": ("出具失败", "publication failed"),
    "record.read": ("查阅核对报告", "record read"), "record.read_denied": ("拒绝查阅", "read refused"),
    "assistance.reported": ("报送救助结果", "assistance reported"), "assistance.read": ("查阅救助清单", "assistance read"),
    "recheck.started": ("启动复核", "re-check started"), "data.purged": ("数据销毁", "data purged"),
    "verification.triggered": ("启动核对流程", "verification started"),
    "subscription.created": ("订阅变更通知", "subscription created"),
    "client.created": ("创建账号", "client created"), "client.deactivated": ("停用账号", "client deactivated"),
    "console.signed_in": ("登录控制台", "console sign-in"), "audit.read": ("审计查询", "audit read"),
    "alert.acknowledged": ("确认告警", "alert acknowledged"),
}
REASON_NAMES = {  # why a source is not complete (fetch_batches.reason)
    "MEMBERS_NOT_AUTHORIZED": ("部分成员未授权查询该来源", "some members did not authorize this source"),
    "CONSENT_WITHDRAWN": ("查询过程中有成员撤回授权，其数据不予使用",
                          "a member withdrew consent during the fetch: their data is not used"),
    "MEMBERS_NOT_ANSWERED": ("部分成员未获答复", "some members were not answered"),
    "MEMBERS_NOT_FOUND": ("部分成员在该来源无记录", "some members are not known to this source"),
    "ROWS_QUARANTINED": ("部分数据未通过校验，已隔离", "some rows failed validation and were quarantined"),
    "BATCH_REJECTED": ("答复格式不符，整批拒收", "the answer's format is wrong: the batch was rejected"),
    "UNREACHABLE": ("无法连接", "unreachable"), "TIMEOUT": ("超时", "timed out"),
    "SERVER_ERROR": ("对方系统错误", "the agency's system failed"), "RATE_LIMITED": ("请求过于频繁", "rate limited"),
    "REFUSED": ("对方拒绝", "refused by the agency"), "BAD_REQUEST": ("请求被拒", "request rejected"),
    "BAD_RESPONSE": ("答复无法读取", "the answer could not be read"),
    "CIRCUIT_OPEN": ("暂停调用（连续失败）", "paused after repeated failures"),
    "DEADLINE": ("超出时限", "deadline passed"),
}
ROLE_NAMES = {"department": ("经办人员", "caseworker"), "auditor": ("审计人员", "auditor"),
              "staff": ("核对中心工作人员", "verification staff"), "admin": ("系统管理员", "administrator")}

_templates = None


def templates():
    global _templates
    if _templates is None:
        import jinja2

        _templates = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                        autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return _templates


def lang_of(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return "en" if chosen == "en" else "zh"


def page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    lang = lang_of(request)
    i = 1 if lang == "en" else 0

    def t(key: str) -> str:
        return TEXT[key][i]

    def source_name(key: str | None) -> str:
        return SOURCES.get(key, (key or t("across"),) * 2)[i] if key else t("across")

    def label(table: dict, key: str | None) -> str:
        return table.get(key, (key or "",) * 2)[i]

    html = templates().get_template(name).render(
        t=t, lang=lang, source_name=source_name, request=request, lang_href=language_switch(request, lang),
        purpose_name=lambda k: label(PURPOSE_NAMES, k),
        relation_name=lambda k: label(RELATION_NAMES, k), status_name=lambda k: label(STATUS_NAMES, k),
        kind_name=lambda k: label(KIND_NAMES, k), role_name=lambda k: label(ROLE_NAMES, k),
        reason_name=lambda k: label(REASON_NAMES, k),
        reason_text=lambda text: (text or "").split(" / ")[i if " / " in (text or "") else 0], **context)
    resp = HTMLResponse(html, status_code=status_code)
    return secured(resp, request)


# the form each form's answer came from: a POSTed page's address cannot be fetched again
FORM_OF = {"/console/login": "/console/login", "/console/requests/lookup": "/console/requests/new",
           "/console/requests": "/console/requests/new", "/console/audit/person": "/console/audit/"}


def language_switch(request: Request, lang: str) -> str:
    """The address of this page in the other language: the same page with the same query (a record needs its
    purpose, a filtered list keeps its filter); for the answer to a form, the form's own page."""
    if request.method == "GET" and request.url.path.startswith("/console"):
        path = request.url.path
        keep = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    else:
        path, keep = FORM_OF.get(request.url.path, "/console/"), []
    return f"{path}?{urlencode(keep + [('lang', 'zh' if lang == 'en' else 'en')])}"


def secured(resp: Response, request: Request) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in ("zh", "en"):
        resp.set_cookie(LANG_COOKIE, request.query_params["lang"], max_age=365 * 86400, samesite="strict",
                        path="/console")
    return resp


# -- sessions ---------------------------------------------------------------------------------
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(client: clients.Client) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with session() as s:
        s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        s.add(ConsoleSession(token_sha256=_digest(token), client_id=client.id, created_at=now,
                             expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
        ledger.append(s, "console.signed_in", {"client_id": client.id, "role": client.role})
    return token


def session_client(token: str | None) -> clients.Client | None:
    if not token or len(token) > 128 or not token.isascii():  # ours are ASCII; a lone surrogate cannot be hashed
        return None
    with session() as s:
        row = s.get(ConsoleSession, _digest(token))
        if row is None or row.expires_at < utcnow():
            return None
        return clients.by_id(row.client_id)


class SignInRequired(Exception):
    pass


def console_client(request: Request) -> clients.Client:
    client = session_client(request.cookies.get(COOKIE))
    if client is None:
        raise SignInRequired()
    return client


def console_role(role: str):
    """A dependency admitting signed-in clients of one role (403 for the others)."""
    def check(client: Annotated[clients.Client, Depends(console_client)]) -> clients.Client:
        if client.role != role:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{role} only")
        return client
    return check


Staff = Annotated[clients.Client, Depends(console_role("staff"))]
Signed = Annotated[clients.Client, Depends(console_client)]
Format = Annotated[str, PathParam(pattern="^(csv|xlsx)$")]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID)]
StoredId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


# -- queries shared with the JSON API ---------------------------------------------------------
def validation_runs(*, source: str | None = None, failed_only: bool = False, run_id: str | None = None,
                    request_id: str | None = None, before: int | None = None, limit: int = PAGE):
    """Validation runs, newest first; ``before`` is the id to continue below (keyset pagination)."""
    q = select(ValidationRun)
    if source:
        q = q.where(ValidationRun.source == source)
    if failed_only:
        q = q.where(ValidationRun.success.is_(False))
    if run_id:
        q = q.where(ValidationRun.run_id == run_id)
    if request_id:
        q = q.where(ValidationRun.request_id == request_id)
    if before:
        q = q.where(ValidationRun.id < before)
    with session() as s:
        rows = s.scalars(q.order_by(ValidationRun.id.desc()).limit(limit)).all()
        s.expunge_all()
        return rows


def quarantined(*, source: str | None = None, expectation: str | None = None, batch_id: str | None = None,
                request_id: str | None = None, before: int | None = None, limit: int = PAGE):
    from core.store import FetchBatch

    q = select(QuarantinedRow, FetchBatch.request_id).join(FetchBatch, FetchBatch.id == QuarantinedRow.batch_id)
    if source:
        q = q.where(QuarantinedRow.source == source)
    if expectation:
        q = q.where(QuarantinedRow.expectation == expectation)
    if batch_id:
        q = q.where(QuarantinedRow.batch_id == batch_id)
    if request_id:
        q = q.where(FetchBatch.request_id == request_id)
    if before:
        q = q.where(QuarantinedRow.id < before)
    with session() as s:
        rows = s.execute(q.order_by(QuarantinedRow.id.desc()).limit(limit)).all()
        counts = dict(s.execute(select(QuarantinedRow.expectation, func.count()).group_by(QuarantinedRow.expectation))
                      .all())
        s.expunge_all()
        return rows, counts


# -- routes -----------------------------------------------------------------------------------
router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, client: Signed) -> HTMLResponse:
    return page(request, "home.html", client=client)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html", error=False)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=256)] = "") -> Response:
    client = clients.authenticate(token)
    if client is None:
        return page(request, "login.html", status_code=401, error=True)
    resp = RedirectResponse("/console/", status_code=status.HTTP_303_SEE_OTHER)
    resp.set_cookie(COOKIE, start_session(client), max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                    path="/console", secure=request.url.scheme == "https")
    return secured(resp, request)


@router.post("/logout")
def logout(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        with session() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.token_sha256 == _digest(token)))
    resp = RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    resp.delete_cookie(COOKIE, path="/console")
    return secured(resp, request)


@router.get("/data-docs/", response_class=HTMLResponse)
def data_docs_index(
    request: Request, client: Staff, source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    failed: bool = False, run: Annotated[str | None, Query(max_length=250, pattern=NO_NUL)] = None,
    before: Before = None,
) -> HTMLResponse:
    runs = validation_runs(source=source or None, failed_only=failed, run_id=run or None, before=before)
    return page(request, "data_docs.html", client=client, runs=runs, sources=list(SOURCES), source=source,
                failed=failed, run=run, more=len(runs) == PAGE)


@router.get("/data-docs/static/{path:path}")
def data_docs_static(path: str, client: Signed) -> FileResponse:
    from schemas.docs import static_dir

    root = static_dir().resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return FileResponse(target)


@router.get("/data-docs/{run_id}", response_class=HTMLResponse)
def data_docs_page(request: Request, run_id: StoredId, client: Staff) -> HTMLResponse:
    from schemas.docs import render, unpack

    with session() as s:
        run = s.get(ValidationRun, run_id)
        if run is None or not run.docs:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no Data Docs for that validation run")
        s.expunge(run)
    banner = templates().get_template("docs_banner.html").render(
        run=run, t=lambda k: TEXT[k][1 if lang_of(request) == "en" else 0], lang=lang_of(request))
    html = render(unpack(run.docs), static_url="/console/data-docs/static", banner=banner)
    return secured(HTMLResponse(html), request)


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page(
    request: Request, client: Staff, source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    check: Annotated[str | None, Query(max_length=96, pattern=NO_NUL)] = None, before: Before = None,
) -> HTMLResponse:
    rows, counts = quarantined(source=source or None, expectation=check or None, before=before)
    return page(request, "quarantine.html", client=client, rows=rows, counts=counts, sources=list(SOURCES),
                source=source, check=check, more=len(rows) == PAGE)


SOURCE_COLUMNS = [
    Column("source_name", "数据来源", "Source"), Column("up", "连通", "Up"), Column("latency_ms", "延迟（毫秒）", "Latency (ms)"),
    Column("checked_at", "探测时间", "Checked at"), Column("last_complete_fetch", "最近完整获取", "Last complete fetch"),
    Column("validation_runs", "校验次数", "Validation runs"), Column("validation_pass_rate", "校验通过率", "Pass rate"),
    Column("rows_quarantined", "隔离行数", "Rows quarantined"),
]
QUARANTINE_COLUMNS = [
    Column("created_at", "时间", "When"), Column("source", "数据来源", "Source"), Column("expectation", "校验项", "Check"),
    Column("reason", "原因", "Reason"), Column("request_id", "委托", "Request"), Column("batch_id", "批次", "Batch"),
    Column("row_no", "行号", "Row"), Column("person_ref", "人员（假名）", "Person (pseudonym)"),
    Column("validation_run_id", "校验运行", "Validation run"),
]
EXPORT_MAX = 50_000


def _days(days: int | None) -> int:
    return days if days and 1 <= days <= 366 else 7


def sources_rows(days: int, lang: str) -> list[dict]:
    from hub.stages.health import overview

    i = 1 if lang == "en" else 0
    rows = overview(utcnow() - dt.timedelta(days=days))
    for r in rows:
        r["source_name"] = SOURCES[r["source"]][i] if r["source"] in SOURCES else r["source"]
    return rows


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request, client: Staff, days: Annotated[int | None, Query(ge=1, le=366)] = None
                 ) -> HTMLResponse:
    """Each source's health, freshness and validation pass rate, with charts."""
    return page(request, "sources.html", client=client, rows=sources_rows(_days(days), lang_of(request)),
                days=_days(days))


@router.get("/sources.{fmt}")
def sources_export(request: Request, fmt: Format, client: Staff,
                   days: Annotated[int | None, Query(ge=1, le=366)] = None) -> Response:
    return download(sources_rows(_days(days), lang_of(request)), SOURCE_COLUMNS, fmt, "sources", lang_of(request))


@router.get("/quarantine.{fmt}")
def quarantine_export(request: Request, fmt: Format, client: Staff,
                      source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
                      check: Annotated[str | None, Query(max_length=96, pattern=NO_NUL)] = None) -> Response:
    rows, _ = quarantined(source=source or None, expectation=check or None, limit=EXPORT_MAX)
    out = [{"created_at": q.created_at, "source": q.source, "expectation": q.expectation,
            "reason": q.reason, "request_id": rid, "batch_id": q.batch_id, "row_no": q.row_no,
            "person_ref": q.person_ref, "validation_run_id": q.validation_run_id} for q, rid in rows]
    return download(out, QUARANTINE_COLUMNS, fmt, "quarantine", lang_of(request))


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, client: Staff) -> HTMLResponse:
    """Failed pipeline tasks (the DAGs' failure callback) and each source's latest health check."""
    from hub.airflow.alerts import open_alerts
    from hub.stages.health import latest_checks

    return page(request, "alerts.html", client=client, alerts=open_alerts(), checks=latest_checks(),
                sources=list(SOURCES))


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(request: Request, alert_id: StoredId, client: Staff) -> Response:
    from hub.airflow.alerts import acknowledge

    if not acknowledge(alert_id, client.id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such open alert")
    return secured(RedirectResponse("/console/alerts", status_code=status.HTTP_303_SEE_OTHER), request)


def install(app) -> None:
    """Mount the console on the API's app."""
    from hub.web import console_audit
    from hub.web import console_case

    app.include_router(router)
    app.include_router(console_case.router)
    app.include_router(console_audit.router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        return secured(RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER), request)
