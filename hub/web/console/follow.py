"""What the request page says while a caseworker follows a request (hub.services.requests.request_progress): each
source's step, the stage in words, what happens next and, when it ended without a record, what the caseworker can
do. The page reloads itself every REFRESH_S seconds (a meta refresh: the CSP allows no script) until the request is
finished."""

from __future__ import annotations

from hub.web.console.pages import TEXT

REFRESH_S = 3

STEP_NAMES = {  # SourceProgress.step
    "waiting": ("等待开始", "waiting"),
    "asking": ("正在查询", "asking the agency"),
    "answered": ("已答复，待校验", "answered, to be checked"),
    "checked": ("已校验", "checked"),
    "incomplete": ("不完整", "incomplete"),
    "refused": ("未查询（无授权）", "not asked (no authorization)"),
    "not_asked": ("未查询", "not asked"),
}

TEXT.update({
    "progress": ("核对进度", "Progress"),
    "stage": ("当前阶段", "Stage"),
    "next": ("下一步", "What happens next"),
    "asked_col": ("查询人数", "Members asked"),
    "rows_col": ("答复条数", "Rows answered"),
    "checked_col": ("通过校验", "Rows passed"),
    "quarantined_col": ("隔离条数", "Rows quarantined"),
    "step_col": ("进度", "Step"),
    "refused_members": ("{n} 名成员未授权", "{n} members not authorized"),
    "answered_of": ("已答复 {n} / {m} 个来源", "{n} of {m} sources answered"),
    "auto_refresh": ("本页每 {s} 秒自动刷新，直至核对结束。", "This page reloads every {s} seconds until the "
                     "verification ends."),
    "summary": ("核对结论", "Outcome"),
    "stage_signing": ("等待成员在手机上签署授权", "Waiting for the members to sign on their phones"),
    "next_signing": ("请把下面每位成员本人的二维码或链接交给本人（未成年人的交给其监护人）。成员用“统一身份认证”登录后，"
                     "看到本次委托的全部内容并签署或拒绝；全部成员答复后核对自动开始。",
                     "Give each member their own QR code or link below (a minor's to their guardian). Each signs in "
                     "with the government identity service, sees everything this request asks and signs or "
                     "declines; the verification starts by itself once every member has answered."),
    "invitations": ("成员签署（码上办）", "Members' signatures (on their phones)"),
    "inv_member": ("成员", "Member"), "inv_state": ("状态", "State"), "inv_link": ("签署二维码与链接", "QR code and link"),
    "inv_pending": ("待签署", "to sign"), "inv_signed": ("已签署", "signed"), "inv_declined": ("已拒绝", "declined"),
    "inv_minor": ("未成年，由监护人签署", "minor: a guardian signs"),
    "inv_until": ("链接有效期至", "Link valid until"),
    "stage_waiting": ("已受理，等待开始", "Received, waiting to start"),
    "stage_asking": ("正在向各部门查询", "Asking the agencies"),
    "stage_checking": ("正在校验数据", "Checking the answers"),
    "stage_publishing": ("正在出具核对报告", "Publishing the record"),
    "stage_published": ("核对报告已出具", "Record published"),
    "stage_refused": ("未出具报告（无授权）", "No record (no authorization)"),
    "stage_failed": ("核对未完成", "Verification did not finish"),
    "next_waiting_worker": ("本系统的核对进程将在几秒内开始向各部门查询，无需任何操作。",
                            "The hub's worker starts asking the agencies within seconds; nothing to do."),
    "next_waiting_airflow": ("已提交调度系统（Airflow），核对流程即将开始，无需任何操作。",
                             "Handed to the scheduler (Airflow): the verification starts shortly; nothing to do."),
    "next_waiting_none": ("本系统未配置自动核对：请联系核对中心工作人员启动核对（hub verify）。",
                          "This hub runs no verification by itself: ask the verification centre's staff to start it "
                          "(hub verify)."),
    "next_asking": ("各部门答复后逐一校验；全部来源答复并校验后出具核对报告。",
                    "Each answer is checked as it arrives; once every source is answered and checked, the record is "
                    "published."),
    "next_checking": ("全部来源已答复，正在按校验规则检查数据，未通过的数据将被隔离，不计入报告。",
                      "Every source answered; the rows are being checked, and rows that fail are quarantined, kept "
                      "out of the record."),
    "next_publishing": ("校验完成，正在汇总家庭经济状况并出具核对报告。",
                        "Checks done: the household's record is being put together and published."),
    "next_published": ("核对报告已出具，可查看和打印。不完整的来源在报告中注明。",
                       "The record is published: read and print it. Sources left incomplete are named in it."),
    "next_NO_MEMBER_AUTHORIZED": ("没有任何成员授权查询所选来源，因此未出具报告。请让家庭成员签署授权书后重新提交申请。",
                                  "No member authorized any of the sources asked for, so no record was published. "
                                  "Have the members sign their authorization forms and submit the request again."),
    "next_HOUSEHOLD_NOT_IDENTIFIED": ("公安户籍未能确认该家庭，因此未出具报告。请核对申请人的身份证号及家庭成员后重新提交；"
                                      "如仍失败，请联系核对中心。",
                                      "Household registration could not identify the household, so no record was "
                                      "published. Check the applicant's ID number and the members, and submit again; "
                                      "if it fails again, contact the verification centre."),
    "next_WORKER_ERROR": ("核对过程中出现系统错误，未出具报告。请联系核对中心工作人员，告知核对编号，由其重新启动核对。",
                          "A system error stopped the verification; no record was published. Contact the "
                          "verification centre's staff with the request number so they start it again."),
    "next_NOT_PUBLISHED": ("核对未能完成，未出具报告。请联系核对中心工作人员，告知核对编号。",
                           "The verification did not finish and no record was published. Contact the verification "
                           "centre's staff with the request number."),
    "request_no": ("核对编号", "Request number"),
})


def context(progress, lang: str) -> dict:
    """What case_request.html needs beside the progress: step and reason names, the refresh, the next step."""
    i = 1 if lang == "en" else 0
    p = progress
    if p.stage == "waiting":
        nxt = f"next_waiting_{p.driver}"
    elif p.stage in ("refused", "failed"):
        nxt = f"next_{p.why or 'NOT_PUBLISHED'}"
    else:
        nxt = f"next_{p.stage}"
    return {
        "p": p, "req": p.request, "refresh": None if p.finished else REFRESH_S,
        "step_name": lambda k: STEP_NAMES.get(k, (k, k))[i],
        "next_text": TEXT[nxt][i],
        "answered_text": TEXT["answered_of"][i].format(n=p.answered, m=len(p.sources)),
        "refresh_text": TEXT["auto_refresh"][i].format(s=REFRESH_S),
        "refused_text": lambda n: TEXT["refused_members"][i].format(n=n),
    }
