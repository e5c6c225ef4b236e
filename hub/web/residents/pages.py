"""/m/: residents on their phones (掌上办, 码上办). Chinese by default, English with ``?lang=en`` (remembered in a
cookie); made for one hand at 390x844 and for a desktop alike; no JavaScript, under the console's strict policy.

Sign-in goes through the government's identity provider (OpenID Connect, hub.services.residents.relying_party):
/m/login sends the resident there, /m/auth/callback takes them back; the hub then holds a random session token in an
HttpOnly, SameSite=Lax cookie (path /m) of which the store keeps the SHA-256, for HUB_RESIDENT_SESSION_MIN minutes.
Every form carries the session's own token (``csrf``). Pages show the ID number masked, never whole, and an address
never carries it.

What a resident may see is decided in hub.services.residents (their own requests, household, ledger entries);
anything else is 404, the same as nothing.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent.tree import NotCheckpointed
from core.crypto import sha256_hex
from core.ids import HEX32, MAX_ID
from core.settings import settings
from hub.services import applications
from hub.services import residents as svc
from hub.services.errors import Invalid, NotFound, ServiceError
from hub.services.requests import trigger_verification
from hub.web.console import pages as console
from hub.web.console.pages import KIND_NAMES, PURPOSE_NAMES, REASON_NAMES, department_label, when
from hub.web.errors import reference
from schemas.sources import FINANCIAL_SOURCES
from schemas.codes import ANSHAN_DIVISIONS, DIVISIONS_EN
from schemas.vocabulary import ANSWER_NAMES, PURPOSE_NAMES as PURPOSE_NAMES_ONLY, RELATION_NAMES, SOURCE_NAMES, \
    SOURCE_STATUS_NAMES

COOKIE, LANG_COOKIE = "hub_resident", "hub_m_lang"
APPLY_ROWS = 5  # other members an application form has room for (an application names at most 10)
Token = Annotated[str, PathParam(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

TEXT: dict[str, tuple[str, str]] = {
    "title": ("掌上办 · 社会救助", "Social assistance on your phone"),
    "brand": ("掌上办", "On your phone"),
    "home": ("首页", "Home"),
    "signin": ("用统一身份认证登录", "Sign in with the government identity service"),
    "signin_why": ("登录后可以签署授权、查看核对进度和结果、幸福清单、谁查阅过您的数据，并可随时撤回授权。",
                   "Signed in, you can sign authorizations, follow your verifications and results, see your "
                   "assistance list and who read your data, and withdraw consent at any time."),
    "signout": ("退出", "Sign out"),
    "hello": ("您好，{name}", "Hello, {name}"),
    "id_masked": ("身份证号", "ID number"),
    "requests": ("我的核对", "My verifications"),
    "assistance": ("幸福清单", "My assistance"),
    "data": ("我的数据", "My data"),
    "consents": ("撤回授权", "Withdraw consent"),
    "messages": ("消息", "Messages"),
    "apply": ("申请救助", "Apply"),
    "unread": ("{n} 条未读", "{n} unread"),
    "none_yet": ("暂无。", "Nothing yet."),
    "to_sign": ("待签署", "To sign"),
    "sign_title": ("授权签署", "Authorization to sign"),
    "sign_for_minor": ("您作为监护人，为未成年家庭成员 {name} 签署", "As guardian, you sign for the minor {name}"),
    "sign_for_self": ("本人签署", "You sign for yourself"),
    "who_asks": ("委托部门", "Asked by"),
    "purpose": ("用途", "Purpose"),
    "case_ref": ("业务编号", "Case number"),
    "sources": ("查询的数据", "Data asked for"),
    "financial": ("金融信息（需单独同意）", "Financial data (separate consent)"),
    "validity": ("授权有效期", "Valid"),
    "data_life": ("原始数据保存", "Raw data kept"),
    "days": ("{n} 天", "{n} days"),
    "recheck": ("复核间隔", "Re-checked at most every"),
    "how_withdraw": ("如何撤回", "How to withdraw"),
    "how_withdraw_text": ("登录“掌上办”，在“撤回授权”中随时撤回；撤回后不再向任何单位查询，已获取的数据到期销毁。",
                          "Sign in here and use “Withdraw consent” at any time: nothing is asked after that, and "
                          "data already fetched is destroyed at the end of its life."),
    "text_you_sign": ("您签署的内容", "What you sign"),
    "agree_financial": ("我同意查询上述金融信息", "I consent to the financial data above"),
    "sign": ("同意并签署", "Agree and sign"),
    "decline": ("不同意", "Decline"),
    "link_valid_until": ("链接有效期至", "Link valid until"),
    "signed_ok": ("已签署。感谢您的配合。", "Signed. Thank you."),
    "declined_ok": ("您已拒绝授权，不会查询您的数据。", "You declined: nothing will be asked about you."),
    "state_signed": ("已签署", "signed"), "state_declined": ("已拒绝", "declined"), "state_pending": ("待签署", "to sign"),
    "started": ("全部成员已答复，核对已开始。", "Every member has answered: the verification has started."),
    "ref_unknown": ("此链接无效。请核对二维码或链接是否完整，或联系经办人员。",
                    "This link is not valid. Check that the QR code or link is complete, or ask your caseworker."),
    "ref_expired": ("此链接已过期。请联系经办人员重新发送。", "This link has expired. Ask your caseworker for a new one."),
    "ref_used": ("此授权已经答复过（{state}），不能重复签署。", "This authorization was answered already ({state}); it cannot be signed twice."),
    "ref_not_you": ("此链接是发给其他家庭成员的，您不能代替其他成年人签署。请使用发给您本人的链接。",
                    "This link is for another member: an adult cannot sign for another adult. Use the link sent to you."),
    "ref_minor": ("未满 18 周岁的家庭成员不能自己签署，请由监护人（家庭中的成年成员）签署。",
                  "Members under 18 cannot sign themselves: a guardian (an adult member) signs for them."),
    "ref_guardian_first": ("请先签署您本人的授权，再为未成年家庭成员签署。",
                           "Sign your own authorization first, then sign for the minor."),
    "login_failed": ("登录未成功", "Sign-in did not succeed"),
    "li_unknown_login": ("登录已失效或已使用，请重新登录。", "This sign-in has expired or was used already; sign in again."),
    "li_expired": ("登录超时或身份凭证已过期，请重新登录。", "The sign-in took too long or its token expired; sign in again."),
    "li_denied": ("统一身份认证未完成登录。", "The identity service did not complete the sign-in."),
    "li_bad_token": ("身份凭证无效（签名、受众或随机数不符），已拒绝。", "The identity token is not valid (signature, audience or nonce); refused."),
    "li_wrong_issuer": ("身份凭证不是由本平台认可的认证机构签发的，已拒绝。", "The identity token comes from an issuer this hub does not trust; refused."),
    "li_no_id_number": ("身份凭证中没有有效的身份证号。", "The identity token carries no valid ID number."),
    "li_unreachable": ("暂时无法连接统一身份认证，请稍后再试。", "The identity service cannot be reached; try again later."),
    "try_again": ("重新登录", "Sign in again"),
    "stage_signing": ("等待家庭成员签署授权", "Waiting for members to sign"),
    "stage_waiting": ("已受理，等待核对", "Received, waiting to be checked"),
    "stage_asking": ("正在向各单位查询、校验", "Asking the agencies and checking"),
    "stage_checking": ("各单位已答复，正在校验数据", "The agencies answered; checking their data"),
    "stage_publishing": ("正在汇总并出具核对结果", "Putting the result together"),
    "stage_published": ("已出具核对结果", "Result published"),
    "stage_refused": ("未获授权，未进行核对", "Not authorized: nothing was checked"),
    "stage_failed": ("核对未能完成，经办人员会跟进", "The check could not finish; your caseworker will follow up"),
    "signatures": ("签署情况：已签 {signed}，拒绝 {declined}，待签 {pending}",
                   "Signatures: {signed} signed, {declined} declined, {pending} to sign"),
    "your_signature": ("您的授权", "Your authorization"),
    "sign_minor_link": ("为未成年成员签署", "Sign for a minor member"),
    "result": ("核对结果", "Result"),
    "screening": ("初步判断", "Screening answer"),
    "reasons": ("依据", "Reasons"),
    "result_note": ("这是核对平台根据各单位数据作出的初步判断，最终以救助部门的审批为准。",
                    "This is the hub's screening from the agencies' data; the assistance department decides."),
    "sources_state": ("各项数据", "Sources"),
    "next_incomplete": ("该项数据不完整：{reason}。平台会在复核时重新查询；如有疑问请联系经办人员。",
                        "This source is incomplete: {reason}. The hub asks again at the next re-check; ask your "
                        "caseworker if in doubt."),
    "rechecked": ("最近复核", "Latest re-check"),
    "version": ("报告版本", "Record version"),
    "created": ("提交时间", "Submitted"),
    "granted_from": ("开始", "From"), "granted_until": ("结束", "Until"), "open_ended": ("长期", "open-ended"),
    "programme": ("救助项目", "Programme"), "department": ("部门", "Department"),
    "monthly_amount": ("每月金额（元）", "Monthly amount (yuan)"), "not_reported": ("未报送", "not reported"),
    "assistance_note": ("各部门报送的、给予您家庭的救助。", "Assistance the departments reported granting your household."),
    "data_note": ("每一次对您数据的使用都记录在防篡改的日志中。每条记录都可以下载“包含证明”，任何人都可以用核对中心公布的公钥验证它确实在日志里、没有被改动。",
                  "Every use of your data is in a tamper-evident log. Each entry has an inclusion proof to download: "
                  "anyone can check it with the centre's public key, proving the entry is in the log unaltered."),
    "what": ("事项", "What"), "who": ("由谁", "By"), "when": ("时间", "When"),
    "automatic": ("平台自动处理", "the hub itself"),
    "for_department": ("受{department}委托", "entrusted by {department}"),
    "by_you": ("您本人", "you"), "by_guardian": ("您的监护人", "your guardian"),
    "proof": ("包含证明", "Inclusion proof"), "proof_pending": ("待下一个检查点", "after the next checkpoint"),
    "unusual": ("异常查阅，审计人员已关注", "unusual read: auditors see it"),
    "older": ("更早", "Older"),
    "consents_note": ("撤回后：复核停止，不再向任何单位查询；相关部门会收到通知；已获取的数据到期后销毁。撤回会记录在日志中。",
                      "After you withdraw: re-checks stop and no agency is asked again; the department is notified; "
                      "data already fetched is destroyed at the end of its life. The withdrawal is logged."),
    "withdraw_all": ("撤回整个家庭的本次申请授权", "Withdraw the whole household's authorization"),
    "withdraw_self": ("撤回我本人的授权", "Withdraw my own consent"),
    "withdraw_source": ("只撤回这一项", "Withdraw just this source"),
    "withdrawn_full": ("已撤回（整个家庭）", "withdrawn (whole household)"),
    "withdrawn_member": ("您已撤回", "you withdrew"),
    "withdrawn_expired": ("已到期", "expired"),
    "withdrawn_ok": ("已撤回，自下一次查询起生效。", "Withdrawn: effective from the next query."),
    "confirm_withdraw": ("我确认撤回", "I confirm the withdrawal"),
    "confirm_needed": ("请勾选“我确认撤回”后再提交。", "Tick “I confirm the withdrawal” first."),
    "in_force": ("有效", "in force"),
    "msg_sign.invited": ("{department}请您为“{purpose}”核对签署授权。", "{department} asks you to sign an authorization for {purpose}."),
    "msg_sign.complete": ("“{purpose}”核对的授权已全部答复，核对已开始。", "Everyone answered for {purpose}: the verification has started."),
    "msg_sign.declined": ("“{purpose}”核对无人授权，未进行核对。", "Nobody authorized the {purpose} verification: nothing was checked."),
    "msg_result.published": ("“{purpose}”核对结果已出具，可在“我的核对”中查看。",
                             "The result of the {purpose} verification is published: see My verifications."),
    "msg_consent.withdrawn.household": ("“{purpose}”核对中整个家庭的授权已撤回。",
                                        "The whole household's consent in the {purpose} verification was withdrawn."),
    "msg_consent.withdrawn.self": ("您在“{purpose}”核对中的授权已撤回。",
                                   "Your consent in the {purpose} verification was withdrawn."),
    "msg_consent.withdrawn.source": ("您在“{purpose}”核对中对“{source}”的授权已撤回，其他数据不受影响。",
                                     "Your consent to {source} in the {purpose} verification was withdrawn; the "
                                     "rest stands."),
    "msg_application.accepted": ("您的“{purpose}”申请已受理，请家庭成员签署授权。", "Your {purpose} application was accepted: members are asked to sign."),
    "msg_application.declined": ("您的“{purpose}”申请未受理：{reason}", "Your {purpose} application was declined: {reason}"),
    "back": ("返回", "Back"),
    "err_404": ("没有找到：页面不存在，或不对您开放。", "Not found: the page does not exist or is not open to you."),
    "err_422": ("提交的内容有误，请返回重新填写。", "What was sent is not right; go back and try again."),
    "err_409": ("暂时无法完成，请稍后再试。", "Not possible now; try again later."),
    "err_403": ("无权进行此操作。", "You may not do this."),
    "err_500": ("出错了，您的操作可能没有完成。参考编号：{ref}", "Something went wrong; what you did may not be done. Reference: {ref}"),
    "err_503": ("暂时无法服务，请稍后再试。", "Temporarily unavailable; try again shortly."),
    "tz_note": ("时间均为北京时间。", "Times are Beijing time."),
    "progress": ("进度", "Progress"),
    "apply_note": ("向所在区县的主管部门申请。部门受理后，会请家庭成员在手机上签署授权，然后开始核对。",
                   "Apply to the department of your district. Once it accepts, the members are asked to sign on "
                   "their phones, then the verification starts."),
    "programme_pick": ("申请项目", "Programme"), "district": ("所在区县", "District"),
    "my_relation": ("您在家庭中的身份", "You are the household's"),
    "other_members": ("其他家庭成员（可选）", "Other members (optional)"),
    "member_n": ("成员 {n}", "Member {n}"), "name": ("姓名", "Name"), "id_number": ("身份证号", "ID number"),
    "relation": ("与户主关系", "Relation to the head"),
    "submit_application": ("提交申请", "Submit the application"),
    "applied_ok": ("申请已提交，部门受理后会通知您。", "Application submitted: you will be told when the department decides."),
    "my_applications": ("我的申请", "My applications"),
    "app_pending": ("待受理", "pending"), "app_accepted": ("已受理", "accepted"), "app_declined": ("未受理", "declined"),
}


def lang_of(request: Request) -> str:
    return console.lang_of(request, LANG_COOKIE)


_env = None


def _templates():
    global _env
    if _env is None:
        import jinja2

        _env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                  autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return _env


def _switch(request: Request, lang: str) -> str:
    path = request.url.path if request.method == "GET" else "/m/"
    keep = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] if request.method == "GET" else []
    return f"{path}?{urlencode(keep + [('lang', 'zh' if lang == 'en' else 'en')])}"


def page(request: Request, name: str, who: svc.Resident | None, status_code: int = 200, **context) -> HTMLResponse:
    lang = lang_of(request)
    i = 1 if lang == "en" else 0

    def t(key: str, **values) -> str:
        text = TEXT[key][i]
        return text.format(**values) if values else text

    def label(table: dict, key: str | None) -> str:
        return table.get(key, (key or "",) * 2)[i]

    html = _templates().get_template(name).render(
        t=t, lang=lang, who=who, when=when, lang_href=_switch(request, lang), request=request,
        source_name=lambda k: label(SOURCE_NAMES, k), purpose_name=lambda k: label(PURPOSE_NAMES, k),
        relation_name=lambda k: label(RELATION_NAMES, k),
        division_name=lambda c: (ANSHAN_DIVISIONS[c][0], DIVISIONS_EN[c])[i] if c in ANSHAN_DIVISIONS else c,
        department_name=lambda c: department_label(c, i), reason_name=lambda k: label(REASON_NAMES, k),
        kind_name=lambda k: label(KIND_NAMES, k), answer_name=lambda k: label(ANSWER_NAMES, k),
        status_name=lambda k: label(SOURCE_STATUS_NAMES, k),
        reason_text=lambda text: (text or "").split(" / ")[i if " / " in (text or "") else 0],
        has=lambda key: key in TEXT, unread=svc.unread(who) if who else 0, **context)
    return secured(HTMLResponse(html, status_code=status_code), request)


def secured(resp: Response, request: Request) -> Response:
    """The console's headers (no Referer: a signing link's token never leaves in one); the language on /m."""
    return console.secured(resp, request, cookie=LANG_COOKIE, path="/m", samesite="lax")


class SignInRequired(Exception):
    pass


def current(request: Request) -> svc.Resident:
    who = svc.resident(request.cookies.get(COOKIE))
    if who is None:
        raise SignInRequired()
    return who


def maybe(request: Request) -> svc.Resident | None:
    return svc.resident(request.cookies.get(COOKIE))


Signed = Annotated[svc.Resident, Depends(current)]


def _csrf(who: svc.Resident, given: str) -> None:
    if not given or not secrets.compare_digest(given, who.csrf()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this form is not from this session")


router = APIRouter(prefix="/m", include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    who = maybe(request)
    if who is None:
        return page(request, "m_landing.html", None)
    progress = svc.my_requests(who)
    return page(request, "m_home.html", who, progress=progress)


@router.get("/login")
def login(request: Request, next: Annotated[str | None, Query(max_length=256)] = None) -> Response:
    try:
        url = svc.begin_login(next, str(request.base_url))
    except svc.SignInFailed as exc:
        return page(request, "m_login_failed.html", None, status_code=503, code=exc.code)
    return secured(RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER), request)


@router.get("/auth/callback")
def callback(request: Request, state: Annotated[str | None, Query(max_length=128)] = None,
             code: Annotated[str | None, Query(max_length=512)] = None,
             error: Annotated[str | None, Query(max_length=128)] = None,
             iss: Annotated[str | None, Query(max_length=256)] = None) -> Response:
    try:
        token, return_to = svc.finish_login(state, code, str(request.base_url), error, iss)
    except svc.SignInFailed as exc:
        return page(request, "m_login_failed.html", None, status_code=401, code=exc.code)
    resp = RedirectResponse(return_to, status_code=status.HTTP_303_SEE_OTHER)
    resp.set_cookie(COOKIE, token, max_age=int(settings().resident_session_s), httponly=True, samesite="lax",
                    path="/m", secure=request.url.scheme == "https")
    return secured(resp, request)


@router.post("/logout")
def logout(request: Request) -> Response:
    svc.sign_out(request.cookies.get(COOKIE))
    resp = RedirectResponse("/m/", status_code=status.HTTP_303_SEE_OTHER)
    resp.delete_cookie(COOKIE, path="/m")
    return secured(resp, request)


# -- 码上办: signing -------------------------------------------------------------------------------------------------

def _texts(a: svc.Asked, lang: str) -> tuple[str, str | None]:
    i = 1 if lang == "en" else 0
    return svc.text_of(a, lang, (lambda k: SOURCE_NAMES.get(k, (k, k))[i], lambda c: department_label(c, i),
                                 lambda p: PURPOSE_NAMES.get(p, (p, p))[i]))


def _refused(request: Request, who: svc.Resident | None, exc: svc.SigningRefused) -> HTMLResponse:
    code = {"unknown": 404, "expired": 410, "used": 409, "not_you": 403, "minor": 403, "guardian_first": 409}
    i = 1 if lang_of(request) == "en" else 0
    state = TEXT.get(f"state_{exc.state}", ("", ""))[i] if exc.state else ""
    return page(request, "m_refused.html", who, status_code=code.get(exc.code, 400), code=exc.code, state=state)


@router.get("/s/{token}", response_class=HTMLResponse)
def signing_page(request: Request, token: Token) -> Response:
    who = maybe(request)
    if who is None:
        return secured(RedirectResponse(f"/m/login?next={quote(f'/m/s/{token}')}",
                                        status_code=status.HTTP_303_SEE_OTHER), request)
    try:
        a = svc.asked(token, who)
    except svc.SigningRefused as exc:
        return _refused(request, who, exc)
    general, financial = _texts(a, lang_of(request))
    return page(request, "m_sign.html", who, a=a, token=token, general=general, financial=financial,
                text_sha256=sha256_hex(general.encode("utf-8")))


@router.post("/s/{token}", response_class=HTMLResponse)
def signing_answer(request: Request, token: Token, who: Signed, csrf: Annotated[str, Form(max_length=64)] = "",
                   choice: Annotated[str, Form(pattern="^(sign|decline)$")] = "decline",
                   financial: Annotated[str, Form(max_length=8)] = "",
                   text_sha256: Annotated[str, Form(max_length=64)] = "") -> Response:
    _csrf(who, csrf)
    lang = lang_of(request)
    try:
        a = svc.asked(token, who)
        started = svc.answer(token, who, sign=choice == "sign", financial=financial == "yes", lang=lang,
                             texts=_texts(a, lang), text_sha256=text_sha256)
    except svc.SigningRefused as exc:
        return _refused(request, who, exc)
    if started:
        trigger_verification(started)
    return page(request, "m_signed.html", who, signed=choice == "sign", started=bool(started), a=a)


# -- following ----------------------------------------------------------------------------------------------------

@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, who: Signed,
                 request_id: Annotated[str, PathParam(pattern=HEX32)]) -> HTMLResponse:
    p = svc.my_request(request_id, who)
    return page(request, "m_request.html", who, p=p)


@router.get("/assistance", response_class=HTMLResponse)
def assistance_page(request: Request, who: Signed) -> HTMLResponse:
    return page(request, "m_assistance.html", who, grants=svc.my_assistance(who))


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, who: Signed,
              before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> HTMLResponse:
    entries, unusual = svc.my_data(who, before=before, limit=50)
    return page(request, "m_data.html", who, entries=entries, unusual=unusual,
                more=entries[-1].seq if len(entries) == 50 else None, covered=svc.covered([e.seq for e in entries]))


@router.get("/data/{seq}/proof.json")
def proof_download(request: Request, who: Signed, seq: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> Response:
    try:
        proof = svc.my_proof(who, seq)
    except NotCheckpointed:
        raise HTTPException(status.HTTP_409_CONFLICT, "not under a signed checkpoint yet") from None
    body = json.dumps(proof, ensure_ascii=False, indent=2).encode("utf-8")
    return secured(Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="ledger-entry-{seq}-proof.json"'}), request)


# -- withdrawing ----------------------------------------------------------------------------------------------------

@router.get("/consents", response_class=HTMLResponse)
def consents_page(request: Request, who: Signed, done: bool = False) -> HTMLResponse:
    return page(request, "m_consents.html", who, consents=svc.my_consents(who), done=done,
                financial=FINANCIAL_SOURCES)


@router.post("/consents/{authorization_id}/withdraw")
def withdraw(request: Request, who: Signed, authorization_id: Annotated[str, PathParam(pattern=HEX32)],
             csrf: Annotated[str, Form(max_length=64)] = "",
             scope: Annotated[str, Form(pattern="^(household|self|source)$")] = "self",
             source: Annotated[str | None, Form(max_length=32)] = None,
             confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    _csrf(who, csrf)
    if scope != "source" and confirm != "yes":  # the whole consent goes: only when ticked (no script asks)
        consents = svc.my_consents(who)
        if authorization_id not in {c.authorization_id for c in consents}:
            raise NotFound("no such authorization")  # another's is not found, ticked or not
        return page(request, "m_consents.html", who, status_code=422, consents=consents, done=False,
                    financial=FINANCIAL_SOURCES, confirm_needed=True)
    svc.withdraw(who, authorization_id, scope, source or None)
    return secured(RedirectResponse("/m/consents?done=1", status_code=status.HTTP_303_SEE_OTHER), request)


# -- 申请: applications ---------------------------------------------------------------------------------------------

Relation = Annotated[str, Form(max_length=16)]


@router.get("/apply", response_class=HTMLResponse)
def apply_page(request: Request, who: Signed, done: bool = False) -> HTMLResponse:
    return page(request, "m_apply.html", who, applications=applications.for_resident(who.person_ref), done=done,
                purposes=list(PURPOSE_NAMES_ONLY), divisions=ANSHAN_DIVISIONS, relations=RELATION_NAMES,
                rows=range(1, APPLY_ROWS + 1))


@router.post("/apply")
async def apply(request: Request, who: Signed) -> Response:
    form = await request.form()
    field = (lambda k: str(form.get(k) or "")[:64])
    _csrf(who, field("csrf"))
    others = [applications.Member(field(f"id_{n}").strip().upper(), field(f"name_{n}"), field(f"relation_{n}"))
              for n in range(1, APPLY_ROWS + 1) if field(f"id_{n}").strip() or field(f"name_{n}").strip()]
    me = applications.Member(await run_in_threadpool(who.id_number), who.name, field("relation") or "head")
    await run_in_threadpool(lambda: applications.submit(applicant_ref=who.person_ref, applicant=me, others=others,
                                                        programme=field("programme"), division=field("division")))
    return secured(RedirectResponse("/m/apply?done=1", status_code=status.HTTP_303_SEE_OTHER), request)


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, who: Signed) -> HTMLResponse:
    rows = svc.my_messages(who)
    i = 1 if lang_of(request) == "en" else 0

    def say(m) -> str:
        p = m.params or {}
        values = {"department": department_label(p.get("department"), i),
                  "purpose": PURPOSE_NAMES.get(p.get("purpose"), (p.get("purpose") or "",) * 2)[i],
                  "reason": p.get("reason") or "",
                  "source": SOURCE_NAMES.get(p.get("source"), (p.get("source") or "",) * 2)[i]}
        key = f"msg_{m.kind}" + (f".{p.get('scope')}" if m.kind == "consent.withdrawn" else "")
        return TEXT[key][i].format(**values) if key in TEXT else m.kind

    return page(request, "m_messages.html", who, messages=[(m, say(m)) for m in rows])


# -- errors and sign-in ----------------------------------------------------------------------------------------------

def _mobile(request: Request) -> bool:
    return request.url.path == "/m" or request.url.path.startswith("/m/")


async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
    target = request.url.path if request.method == "GET" else "/m/"
    return secured(RedirectResponse(f"/m/login?next={quote(target)}", status_code=status.HTTP_303_SEE_OTHER),
                   request)


async def _error(request: Request, status_code: int, ref: str = "") -> Response:
    key = f"err_{status_code}" if f"err_{status_code}" in TEXT else "err_422"
    who = None
    if status_code not in (500, 503):
        try:
            who = await run_in_threadpool(maybe, request)
        except Exception:
            who = None
    return await run_in_threadpool(lambda: page(request, "m_error.html", who, status_code=status_code,
                                                message=TEXT[key][1 if lang_of(request) == "en" else 0]
                                                .format(ref=ref)))


def install(app: FastAPI) -> None:
    """Mount /m/ and, over the app's handlers, its error pages for /m/ paths (others keep theirs)."""
    app.include_router(router)
    app.add_exception_handler(SignInRequired, _sign_in)

    async def http_error(request, exc):
        return await _error(request, exc.status_code)

    async def invalid(request, exc):
        path_only = all(tuple(e.get("loc", ()))[:1] == ("path",) for e in exc.errors())
        return await _error(request, 404 if path_only else 422)

    async def service_error(request, exc):
        code = 404 if isinstance(exc, NotFound) else 422 if isinstance(exc, Invalid) else 409
        return await _error(request, code)

    async def unexpected(request, exc):
        return await _error(request, 500, reference(request, exc))

    for kind, own in ((StarletteHTTPException, http_error), (RequestValidationError, invalid),
                      (ServiceError, service_error), (Exception, unexpected)):
        previous = app.exception_handlers.get(kind)

        async def handler(request: Request, exc: Exception, own=own, previous=previous) -> Response:
            if _mobile(request):
                return await own(request, exc)
            if previous is None:
                raise exc
            return await previous(request, exc)

        app.add_exception_handler(kind, handler)

