"""The web console served by ``hub api`` under /console/: sign-in, and the pages of each role.

Sign-in takes the same token as the API (``hub clients create``) once; the browser then holds a random session
token in an HttpOnly, SameSite=Strict cookie, of which the store keeps only the SHA-256. Pages are Chinese by
default, English with ``?lang=en`` (remembered in a cookie).

Staff pages (here): sources' health, freshness and validation pass rates; validation runs with their GX Data Docs
(rendered from the stored, value-free results); the quarantine with the reason of every rejected row; alerts.
Caseworkers' pages are in hub/web/console/case.py, auditors' in hub/web/console/audit.py. Staff and auditor pages show
pseudonyms only; a caseworker sees the names and ID numbers of the households of their own department's cases.
Tables staff and auditors would want in a spreadsheet have CSV and Excel downloads (hub/services/export.py).
What the console shares with the JSON API (requests, records, validation results, audit reads) comes from
hub.services; it never imports the JSON API (hub.web.api, hub.web.routers), nor they the console.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete

from consent import ledger
from core.ids import MAX_ID, NO_NUL
from core.store import ConsoleSession, session, utcnow
from hub.airflow.alerts import acknowledge, open_alerts
from hub.services import clients
from hub.services.export import FORMATS, TZ_LABEL, Column, beijing, to_csv, to_xlsx
from hub.services.validation import quarantined, run_docs, validation_runs
from hub.stages.health import latest_checks, monitoring, overview
from hub.stages.reverify import waiting_rechecks
from schemas.codes import department_name
from schemas.docs import render, static_dir, unpack
from schemas.vocabulary import AGENCY_SOURCES, PROGRAMME_NAMES, RELATION_NAMES, SOURCE_NAMES, STATUS_NAMES
from schemas.vocabulary import PURPOSE_NAMES as _PURPOSES

# Imports inside functions below are deliberate: jinja2 is loaded at the first page rendered, not by every process
# that makes the app (`hub api` without a browser, the benchmarks, the tests of the JSON API).

COOKIE, LANG_COOKIE = "hub_session", "hub_lang"
SESSION_HOURS = 8
PAGE = 50
# a strict policy: no outside scripts, styles, images or frames on any console page
CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; script-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

class Texts(dict):
    """The console's strings, (zh, en) by key. Each page module adds its own (``TEXT.update``); a key already given
    another text is refused at import, so that one module cannot silently change the words of another's page."""

    def update(self, other=(), /, **more) -> None:
        for key, value in dict(other, **more).items():
            if key in self and self[key] != value:
                raise KeyError(f"console text {key!r} is already defined with other words")
            self[key] = value


TEXT = Texts({
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
    "all": ("全部", "All"),
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
    "rechecks_waiting": ("等待完整复核的家庭", "Households waiting for a complete re-check"),
    "rechecks_none": ("没有等待完整复核的家庭：最近的复核均已完整完成。",
                      "No household is waiting: every latest re-check came back complete."),
    "waiting_since": ("最早自", "Oldest since"),
    "application": ("申请", "Application"),
    "incomplete_attempts": ("连续未完成次数", "Incomplete attempts in a row"),
    "last_attempt": ("最近一次", "Latest attempt"),
    "next_recheck": ("下次复核不早于", "Next re-check from"),
    "why_incomplete": ("未完成原因", "Why incomplete"),
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
    "household_ref": ("家庭（假名）", "Household (pseudonym)"),
    "signed_in_as": ("当前身份", "Signed in as"),
    "tz_note": (f"页面中的时间均为{TZ_LABEL[0]}（UTC+8）。", f"Times on this page are {TZ_LABEL[1]} (UTC+8)."),
    "gx_note": ("以下为 Great Expectations 生成的数据文档（仅含计数，不含任何数据值）。",
                "Below: the Great Expectations Data Docs of this run (counts only, no data values)."),
})
SOURCES = {k: SOURCE_NAMES[k] for k in AGENCY_SOURCES}
PURPOSE_NAMES = _PURPOSES | PROGRAMME_NAMES
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
    "review.completed": ("精准评估运行", "assistance review run"), "review.read": ("查看评估名单", "review list read"),
    "recheck.started": ("启动复核", "re-check started"), "data.purged": ("数据销毁", "data purged"),
    "verification.triggered": ("启动核对流程", "verification started"),
    "subscription.created": ("订阅变更通知", "subscription created"),
    "client.created": ("创建账号", "client created"), "client.deactivated": ("停用账号", "client deactivated"),
    "console.signed_in": ("登录控制台", "console sign-in"), "audit.read": ("审计查询", "audit read"),
    "alert.acknowledged": ("确认告警", "alert acknowledged"),
    "consent.signed": ("签署授权", "authorization signed"), "consent.declined": ("拒绝授权", "authorization declined"),
    "consent.sign_refused": ("签署未获准（链接不可用）", "signing refused (link not usable)"),
    "resident.signed_in": ("居民登录", "resident signed in"),
    "resident.sign_in_refused": ("居民登录被拒", "resident sign-in refused"),
    "resident.viewed": ("居民查看结果", "resident viewed"), "resident.proof_read": ("居民下载包含证明", "resident proof read"),
    "application.submitted": ("居民提交申请", "application submitted"),
    "application.accepted": ("受理申请", "application accepted"),
    "application.declined": ("不予受理申请", "application declined"),
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
    "TOO_LARGE": ("答复超出约定大小", "the answer was larger than agreed"),
    "BAD_SIGNATURE": ("答复签名无效（可能被篡改、重放或不完整）",
                      "the answer's signature did not hold (changed, replayed or cut)"),
    "COUNT_MISMATCH": ("答复条数与签名声明不符", "the answer's rows differ from its signed counts"),
    "BATCH_MISMATCH": ("批量核对答复中成员数据错归其他家庭，未予采用",
                       "in a batch answer, a member's rows came under another household: not used"),
    "REFERENCE_REJECTED": ("对方未认可部分成员的授权编号", "the agency rejected some members' authorization references"),
    "FAILED": ("复核未能完成", "the re-check could not finish"),
    "NO_MEMBER_AUTHORIZED": ("没有成员授权查询该来源", "no member authorized this source"),
    "NOT_FOUND": ("该来源无此人记录", "the agency does not know the person"),
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


def lang_of(request: Request, cookie: str = LANG_COOKIE) -> str:
    """The page's language: ``?lang=``, else the one remembered in ``cookie``, else Chinese."""
    chosen = request.query_params.get("lang") or request.cookies.get(cookie) or "zh"
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
        t=t, lang=lang, when=when, source_name=source_name, request=request, lang_href=language_switch(request, lang),
        purpose_name=lambda k: label(PURPOSE_NAMES, k),
        relation_name=lambda k: label(RELATION_NAMES, k), status_name=lambda k: label(STATUS_NAMES, k),
        kind_name=lambda k: label(KIND_NAMES, k), role_name=lambda k: label(ROLE_NAMES, k),
        reason_name=lambda k: label(REASON_NAMES, k),
        reason_text=lambda text: (text or "").split(" / ")[i if " / " in (text or "") else 0], **context)
    resp = HTMLResponse(html, status_code=status_code)
    return secured(resp, request)


def department_label(code: str | None, i: int) -> str:
    """A department's name in language ``i`` (0 zh, 1 en) from its code (schemas.codes.department_name), the code
    itself when it is not known."""
    names = department_name(code)
    return names[i] if names else code or ""


def when(value: dt.datetime | None, seconds: bool = False) -> str:
    """A stored time as the console shows it: Beijing time (each page says so under its content), "" for none."""
    if value is None:
        return ""
    return beijing(value).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


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


def secured(resp: Response, request: Request, *, cookie: str = LANG_COOKIE, path: str = "/console",
            samesite: str = "strict") -> Response:
    """A page's security headers (strict CSP, no sniffing, no Referer, not cached); a ``?lang=`` chosen is
    remembered in ``cookie`` on ``path`` (the residents' pages keep theirs on /m)."""
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in ("zh", "en"):
        resp.set_cookie(cookie, request.query_params["lang"], max_age=365 * 86400, samesite=samesite, path=path)
    return resp


def download(rows: list[dict], columns: list[Column], fmt: str, name: str, lang: str) -> Response:
    """The rows as a file to download (made by hub.services.export), named ``<name>-<Beijing time>.<fmt>``."""
    if fmt not in FORMATS:
        raise ValueError(f"format: one of {', '.join(FORMATS)}")
    body = to_csv(rows, columns, lang) if fmt == "csv" else to_xlsx(rows, columns, lang, name)
    stamp = beijing(utcnow()).strftime("%Y%m%dT%H%M%S+0800")
    return Response(body, media_type=FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


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


# -- routes -----------------------------------------------------------------------------------
router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, client: Signed) -> HTMLResponse:
    return page(request, "home.html", client=client, monitoring=monitoring() if client.role == "staff" else None)


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
    runs = validation_runs(source=source or None, failed_only=failed, run_id=run or None, before=before, limit=PAGE)
    return page(request, "data_docs.html", client=client, runs=runs, sources=list(SOURCES), source=source,
                failed=failed, run=run, more=len(runs) == PAGE)


@router.get("/data-docs/static/{path:path}")
def data_docs_static(path: str, client: Signed) -> FileResponse:
    root = static_dir().resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return FileResponse(target)


@router.get("/data-docs/{run_id}", response_class=HTMLResponse)
def data_docs_page(request: Request, run_id: StoredId, client: Staff) -> HTMLResponse:
    run, docs = run_docs(run_id)  # NotFound (404) when the run has no Data Docs
    banner = templates().get_template("docs_banner.html").render(
        run=run, t=lambda k: TEXT[k][1 if lang_of(request) == "en" else 0], lang=lang_of(request))
    html = render(unpack(docs), static_url="/console/data-docs/static", banner=banner)
    return secured(HTMLResponse(html), request)


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page(
    request: Request, client: Staff, source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    check: Annotated[str | None, Query(max_length=96, pattern=NO_NUL)] = None, before: Before = None,
) -> HTMLResponse:
    rows, counts = quarantined(source=source or None, expectation=check or None, before=before, limit=PAGE)
    return page(request, "quarantine.html", client=client, rows=rows, counts=counts, sources=list(SOURCES),
                source=source, check=check, more=len(rows) == PAGE)


TEXT.update({  # the staff pages' own: is anything watching the sources, and what to do when not
    "mon_red": ("数据源监控已停止", "The sources are not being watched"),
    "mon_amber": ("数据源监控需要注意", "Source monitoring needs attention"),
    "mon_no_scheduler": ("未配置调度器（HUB_AIRFLOW_URL 未设置）：不会定时探测数据源，复核、精准评估、检查点等定时任务也不会运行；"
                         "本平台自带的后台任务只处理收到的核对委托。",
                         "No scheduler is configured (HUB_AIRFLOW_URL is not set): nothing probes the sources and no "
                         "scheduled job (re-checks, reviews, checkpoints) runs; the hub's own worker only verifies the "
                         "requests it receives."),
    "mon_unreachable": ("调度器（Airflow）无法连接或不健康：数据源探测和定时任务都未运行，任务失败也不会产生告警。",
                        "The scheduler (Airflow) does not answer or is unhealthy: no probe or scheduled job runs, and "
                        "failed tasks raise no alerts."),
    "mon_stale": ("{n} 个数据源超过 {minutes} 分钟没有探测记录：{names}。页面上它们的状态可能已经过时。",
                  "{n} sources have not been probed for more than {minutes} minutes: {names}. Their status on these "
                  "pages may be out of date."),
    "mon_stale_all": ("所有 {n} 个数据源都超过 {minutes} 分钟没有探测记录：页面上的状态可能已经过时。",
                      "None of the {n} sources has been probed for more than {minutes} minutes: their status on "
                      "these pages may be out of date."),
    "mon_latest": ("最近一次探测：{when}（北京时间）。", "Latest probe: {when} (Beijing time)."),
    "mon_never": ("从未探测过任何数据源。", "No source has ever been probed."),
    "mon_do_no_scheduler": ("处理：部署 Airflow 并设置 HUB_AIRFLOW_URL（见 README）。",
                            "What to do: run Airflow and set HUB_AIRFLOW_URL (see README)."),
    "mon_do_unreachable": ("处理：检查 Airflow 调度器与数据库是否在运行，以及 HUB_AIRFLOW_URL 是否正确。",
                           "What to do: check that Airflow's scheduler and database are running and that "
                           "HUB_AIRFLOW_URL is right."),
    "mon_do_stale": ("处理：在 Airflow 中查看 source_health 流程是否暂停或失败。",
                     "What to do: check in Airflow whether the source_health DAG is paused or failing."),
    "probed": ("探测时间", "Probed"),
    "late": ("已过时", "out of date"),
})

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


def reason_in(text: str | None, lang: str) -> str:
    """A stored reason ("中文 / English", as the suites write it) in the user's language only."""
    zh, sep, en = (text or "").partition(" / ")
    return en if sep and lang == "en" else zh


def _days(days: int | None) -> int:
    return days if days and 1 <= days <= 366 else 7


def sources_rows(days: int, lang: str) -> list[dict]:
    i = 1 if lang == "en" else 0
    rows = overview(utcnow() - dt.timedelta(days=days))
    for r in rows:
        r["source_name"] = SOURCES[r["source"]][i] if r["source"] in SOURCES else r["source"]
    return rows


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request, client: Staff, days: Annotated[int | None, Query(ge=1, le=366)] = None
                 ) -> HTMLResponse:
    """Each source's health, freshness and validation pass rate, with charts."""
    waiting = waiting_rechecks()
    return page(request, "sources.html", client=client, rows=sources_rows(_days(days), lang_of(request)),
                days=_days(days), waiting=waiting[:50], waiting_count=len(waiting), monitoring=monitoring())


@router.get("/sources.{fmt}")
def sources_export(request: Request, fmt: Format, client: Staff,
                   days: Annotated[int | None, Query(ge=1, le=366)] = None) -> Response:
    return download(sources_rows(_days(days), lang_of(request)), SOURCE_COLUMNS, fmt, "sources", lang_of(request))


@router.get("/quarantine.{fmt}")
def quarantine_export(request: Request, fmt: Format, client: Staff,
                      source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
                      check: Annotated[str | None, Query(max_length=96, pattern=NO_NUL)] = None) -> Response:
    rows, _ = quarantined(source=source or None, expectation=check or None, limit=EXPORT_MAX)
    lang = lang_of(request)
    i = 1 if lang == "en" else 0
    out = [{"created_at": q.created_at, "source": SOURCES[q.source][i] if q.source in SOURCES else q.source,
            "expectation": q.expectation, "reason": reason_in(q.reason, lang), "request_id": q.request_id,
            "batch_id": q.batch_id, "row_no": q.row_no,
            "person_ref": q.person_ref, "validation_run_id": q.validation_run_id} for q in rows]
    return download(out, QUARANTINE_COLUMNS, fmt, "quarantine", lang)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, client: Staff) -> HTMLResponse:
    """Failed pipeline tasks (the DAGs' failure callback) and each source's latest health check."""
    checks = latest_checks()
    return page(request, "alerts.html", client=client, alerts=open_alerts(), checks=checks,
                sources=list(SOURCES), monitoring=monitoring(checks=checks))


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(request: Request, alert_id: StoredId, client: Staff) -> Response:
    if not acknowledge(alert_id, client.id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such open alert")
    return secured(RedirectResponse("/console/alerts", status_code=status.HTTP_303_SEE_OTHER), request)


async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
    return secured(RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER), request)


def install(app: FastAPI) -> None:
    """Mount the staff's pages and the sign-in on the app (hub.web.app adds the caseworkers' and auditors' pages,
    which build on this module)."""
    from hub.web.console import error_page  # it builds on this module

    app.include_router(router)
    app.add_exception_handler(SignInRequired, _sign_in)
    error_page.install(app)  # console paths' errors as a page in the user's language (after hub.web.errors)
