"""精准评估 in the console (/console/review): the latest assistance review drawn as charts (a monthly trend of grants
and re-checks, a bar per county, a funnel of screening answers against grants), each with its numbers in a table
beside it, and the lists (应救未救, needs review, 过度救助) with filters, paging and CSV/Excel downloads.

Charts are SVG drawn here on the server: no script, nothing from outside, under the console's strict CSP. Staff and
auditors see the whole city; a department's caseworker sees only the entries of its own households (and no city
charts). An auditor opens any entry's ledger trail (/console/audit/households/<ref>)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape

from core.ids import NO_NUL
from hub.services import clients
from hub.services.export import Column
from hub.services.review import Filters, entries, latest_run
from hub.web.console.pages import TEXT, Format, console_client, download, lang_of, page
from schemas.codes import ANSHAN_DIVISIONS
from schemas.vocabulary import ANSWER_NAMES, ASSISTANCE_PROGRAMMES, PROGRAMME_NAMES

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 50
EXPORT_MAX = 50_000
LIST_KINDS = ("missed", "review", "over")

COUNTY_NAMES = {code: (zh, en) for (code, (zh, _)), en in zip(sorted(ANSHAN_DIVISIONS.items()), (
    "Tiedong District", "Tiexi District", "Lishan District", "Qianshan District", "Tai'an County",
    "Xiuyan Manchu Autonomous County", "Haicheng City"))} | {"other": ("辖区外", "outside the city")}
# the screening's reason codes (hub.rules.unify) in the users' words
SCREENING_REASONS = {
    "OWNS_VEHICLE": ("拥有机动车", "owns a car or truck"),
    "OWNS_VESSEL": ("拥有船舶", "owns a vessel"),
    "PROPERTIES_ABOVE_LIMIT": ("住房超过规定套数", "more homes than allowed"),
    "FINANCIAL_ASSETS_ABOVE_LIMIT": ("金融资产超过限额", "financial assets above the limit"),
    "RUNS_MARKET_ENTITY": ("为存续企业法定代表人或股东", "runs or holds shares in a company"),
    "INCOME_AT_OR_ABOVE_STANDARD": ("人均收入不低于低保标准", "income per person not below the dibao line"),
    "INCOME_OUTSIDE_LOW_INCOME_BAND": ("人均收入不在低收入区间", "income per person outside the low-income band"),
    "INCOME_BELOW_STANDARD": ("人均收入低于低保标准", "income per person below the dibao line"),
    "INCOME_IN_LOW_INCOME_BAND": ("人均收入在低收入区间", "income per person in the low-income band"),
    "ASSET_TEST_PASSED": ("通过资产核查", "passes the asset test"),
    "HAS_SUPPORTER": ("有收入的劳动年龄成员可履行扶养义务", "a working-age member with income can support"),
    "NO_MEMBER_WITHOUT_WORK_CAPACITY_BY_AGE": ("无无收入的老年或未成年成员", "no elderly or minor member without income"),
    "NO_INCOME_NO_SUPPORTER": ("老年或未成年成员无收入且无人扶养", "elderly or minor members without income or support"),
    "SUPPORTERS_NOT_IN_SOURCES": ("户外赡养人情况需人工确认", "supporters outside the household: confirm by hand"),
    "EXPENDITURE_NOT_IN_SOURCES": ("刚性支出需经办人核实", "essential spending: the caseworker must add it"),
    "SOURCES_INCOMPLETE": ("数据来源不完整", "incomplete sources"),
    "DISCREPANCIES": ("数据不一致，需人工复核", "discrepancies between sources"),
    "NO_STANDARD_FOR_DIVISION": ("户籍不在本市辖区", "registered outside the city"),
    "REGISTERED_IN_ANOTHER_REGION": ("在外地也有户籍", "also registered in another region"),
    "ASSISTANCE_ELIGIBLE_ELSEWHERE": ("在外地被认定符合救助条件", "eligible for assistance in another region"),
}
SHORT_NAMES = {"dibao": ("低保", "dibao"), "low_income": ("低收入", "low income"), "tekun": ("特困", "extreme poverty")}
LIST_NAMES = {"missed": ("应救未救", "Qualifies, not assisted"), "review": ("待人工复核", "Needs review, not assisted"),
              "over": ("过度救助", "Assisted, no longer qualifies")}
MOVES = {"grants_started": ("新增救助", "grants started"), "grants_ended": ("终止救助", "grants ended"),
         "rechecked": ("复核户数", "households re-checked"), "material_changes": ("重大变化", "material changes"),
         "answer_changed": ("认定结果变化", "answers changed")}
TEXT.update({
    "review": ("精准评估", "Assistance review"),
    "review_none": ("尚无评估结果：评估每日运行（Airflow 中的 assistance_review），也可运行 `hub review --sync`。",
                    "No review yet: it runs daily (assistance_review in Airflow), or run `hub review --sync`."),
    "review_of": ("评估日期", "Reviewed as of"),
    "review_rules": ("适用标准", "Standards"),
    "review_households": ("有核对记录的家庭", "Households with a record"),
    "trend": ("每月救助与复核", "Grants and re-checks per month"),
    "per_county": ("各区县名单户数", "Households on the lists, per county"),
    "funnel": ("认定结果与救助对照", "Screening answers against grants"),
    "month": ("月份", "Month"), "county": ("区县", "County"), "programme": ("救助项目", "Programme"),
    "review_answer": ("认定结果", "Answer"), "granted": ("已获救助", "Granted"), "not_granted": ("未获救助", "Not granted"),
    "list": ("名单", "List"),
    "reasons": ("原因", "Reasons"), "since": ("起始日期", "Since"), "since_version": ("自第几版记录", "Since version"),
    "departments": ("相关部门", "Departments"), "new_entry": ("新进入", "New"), "trail": ("台账轨迹", "Ledger trail"),
    "next_page": ("下一页", "Next page"), "coverage": ("覆盖率", "Coverage"),
    "recipients_per_1000": ("每千名居民中的救助对象", "Recipients per 1,000 residents"),
    "recheck_changed_share": ("复核后结果变化的比例", "Share of re-checks that changed an answer"),
    "people_decide": ("名单只提示需要关注的家庭，是否给予或终止救助由经办人决定。",
                      "The lists point to households to look at: caseworkers decide whether assistance starts or ends."),
    "own_only": ("仅显示本部门相关家庭。", "Only your department's households are shown."),
    "no_entries": ("名单为空。", "The list is empty."),
    "unknown_residents": ("未设置居民人数（HUB_REVIEW_RESIDENTS）", "residents not set (HUB_REVIEW_RESIDENTS)"),
})
COLUMNS = [Column("list_name", "名单", "List"), Column("programme_name", "救助项目", "Programme"),
           Column("county_name", "区县", "County"), Column("household_ref", "家庭（假名）", "Household (pseudonym)"),
           Column("reasons", "原因", "Reasons"), Column("reason_codes", "原因代码", "Reason codes"),
           Column("since", "起始日期", "Since"), Column("since_version", "自第几版记录", "Since version"),
           Column("record_version", "最新记录版本", "Latest version"), Column("departments", "相关部门", "Departments"),
           Column("new", "新进入", "New")]

Kind = Annotated[str, Query(pattern="^(missed|review|over)$")]
Programme = Annotated[str | None, Query(max_length=32, pattern=NO_NUL)]
County = Annotated[str | None, Query(max_length=8, pattern=NO_NUL)]


def reviewer(client: Annotated[clients.Client, Depends(console_client)]) -> clients.Client:
    if client.role not in ("staff", "auditor", "department"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "staff, auditors and departments only")
    return client


Reviewer = Annotated[clients.Client, Depends(reviewer)]


# -- charts: SVG drawn on the server ---------------------------------------------------------------------------------
COLOURS = ("#1f4e79", "#c0392b", "#2e8b57", "#b9770e", "#6c3483")


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
                  f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{escape(title)}</title>{"".join(body)}</svg>')


def _text_width(text: str, size: int) -> float:
    """About how wide ``text`` is drawn at ``size`` px: a CJK character is square, a Latin one about 0.6 of it."""
    return sum(size if ord(c) >= 0x2E80 else 0.6 * size for c in text)


def hbars(title: str, rows: list[tuple[str, list[int]]], series: list[str]) -> Markup:
    """Horizontal stacked bars: one row per label, one colour per series, the total at the end."""
    top = max((sum(v) for _, v in rows), default=0) or 1
    label_w = min(260, 10 + max((_text_width(label, 12) for label, _ in rows), default=50))  # no label cut off
    bar_w, row_h = 300, 26
    body, top_y = [], 4 + 14 * len(series)
    for i, name in enumerate(series):  # the legend, one line a series
        body.append(f'<rect x="{label_w}" y="{2 + 14 * i}" width="10" height="10" fill="{COLOURS[i % 5]}"/>'
                    f'<text x="{label_w + 14}" y="{11 + 14 * i}" font-size="11">{escape(name)}</text>')
    for r, (label, values) in enumerate(rows):
        y, x = top_y + r * row_h, label_w
        body.append(f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">{escape(label)}</text>')
        for i, v in enumerate(values):
            w = round(bar_w * v / top, 1)
            if w:
                body.append(f'<rect x="{x}" y="{y + 4}" width="{w}" height="16" fill="{COLOURS[i % 5]}"/>')
            x += w
        body.append(f'<text x="{x + 4}" y="{y + 16}" font-size="11">{sum(values)}</text>')
    return _svg(label_w + bar_w + 50, top_y + 4 + row_h * max(1, len(rows)), title, body)


def columns(title: str, months: list[str], series: dict[str, list[int]]) -> Markup:
    """Grouped columns per month, one colour per series."""
    top = max((max(v, default=0) for v in series.values()), default=0) or 1
    n, height, base, group = len(series), 160, 140, 36
    body = []
    for i, name in enumerate(series):
        body.append(f'<rect x="{4 + 125 * i}" y="2" width="10" height="10" fill="{COLOURS[i % 5]}"/>'
                    f'<text x="{18 + 125 * i}" y="11" font-size="11">{escape(name)}</text>')
    for m, month in enumerate(months):
        x0 = 10 + m * group
        for i, values in enumerate(series.values()):
            h = round(100 * values[m] / top, 1)
            body.append(f'<rect x="{x0 + i * (group - 6) / n}" y="{base - h}" width="{(group - 6) / n}" '
                        f'height="{h}" fill="{COLOURS[i % 5]}"/>')
        body.append(f'<text x="{x0 + (group - 6) / 2}" y="{base + 14}" font-size="10" '
                    f'text-anchor="middle">{escape(month[2:])}</text>')
    return _svg(max(380, 20 + group * len(months)), height, title, body)  # the legend's width at least


# -- what the page shows -------------------------------------------------------------------------------------------
def _label(table: dict, key: str | None, i: int) -> str:
    return table.get(key, (key or "",) * 2)[i]


def charts(summary: dict, i: int) -> dict:
    t = {k: v[i] for k, v in TEXT.items()}
    movement = summary.get("movement") or []
    months = sorted({r["month"] for r in movement})[-12:]
    trend_keys = ("grants_started", "grants_ended", "rechecked")
    trend = {k: [sum(r.get(k, 0) for r in movement if r["month"] == m) for m in months] for k in trend_keys}
    trend_rows = [(m, [trend[k][j] for k in trend_keys]) for j, m in enumerate(months)]
    per_county = summary.get("per_county") or {}
    counties = [c for c in COUNTY_NAMES if c in per_county]
    county_rows = [(_label(COUNTY_NAMES, c, i), [per_county[c].get(k, 0) for k in LIST_KINDS]) for c in counties]
    funnel = summary.get("funnel") or {}
    answers = ("yes", "needs_review", "no")
    funnel_rows = [(f"{_label(SHORT_NAMES, p, i)} · {_label(ANSWER_NAMES, a, i)}",
                    [funnel[p][a]["granted"], funnel[p][a]["not_granted"]])
                   for p in ASSISTANCE_PROGRAMMES if p in funnel for a in answers]
    list_names = [_label(LIST_NAMES, k, i) for k in LIST_KINDS]
    return {
        "trend_svg": columns(t["trend"], months, {_label(MOVES, k, i): trend[k] for k in trend_keys}),
        "trend_head": [t["month"], *(_label(MOVES, k, i) for k in trend_keys)], "trend_rows": trend_rows,
        "county_svg": hbars(t["per_county"], county_rows, list_names),
        "county_head": [t["county"], *list_names], "county_rows": county_rows,
        "funnel_svg": hbars(t["funnel"], funnel_rows, [t["granted"], t["not_granted"]]),
        "funnel_head": [t["review_answer"], t["granted"], t["not_granted"]], "funnel_rows": funnel_rows,
    }


def _rows(found, i: int) -> list[dict]:
    return [{"id": e.id, "list_name": _label(LIST_NAMES, e.kind, i), "programme_name": _label(PROGRAMME_NAMES, e.programme, i),
             "county_name": _label(COUNTY_NAMES, e.county or "other", i), "household_ref": e.household_ref,
             "reasons": "；".join(_label(SCREENING_REASONS, r, i) for r in e.reasons) if i == 0 else
             "; ".join(_label(SCREENING_REASONS, r, i) for r in e.reasons),
             "reason_codes": " ".join(e.reasons), "since": e.since, "since_version": e.since_version,
             "record_version": e.record_version, "departments": ", ".join(e.departments),
             "new": ("是", "yes")[i] if e.new else ""} for e in found]


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, client: Reviewer, kind: Kind = "missed", programme: Programme = None,
                county: County = None, after: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    i = 1 if lang_of(request) == "en" else 0
    run = latest_run()
    filters = Filters(kind, programme or None, county or None)
    found = entries(run, filters, client, after=after, limit=PAGE) if run else []
    city = client.role != "department"  # a department sees its own entries, not the city's figures
    return page(request, "review.html", client=client, run=run, filters=filters, rows=_rows(found, i),
                more=len(found) == PAGE, last=found[-1].id if found else None,
                charts=charts(run.summary, i) if run and city else None, city=city,
                coverage=run.summary.get("coverage") if run else None,
                kinds=[(k, _label(LIST_NAMES, k, i)) for k in LIST_KINDS],
                programmes=[(p, _label(PROGRAMME_NAMES, p, i)) for p in ASSISTANCE_PROGRAMMES],
                counties=[(c, _label(COUNTY_NAMES, c, i)) for c in COUNTY_NAMES],
                counts={k: (run.summary["counts"].get(k, 0) if run and city else None) for k in LIST_KINDS})


@router.get("/review.{fmt}")
def review_export(request: Request, fmt: Format, client: Reviewer, kind: Kind = "missed",
                  programme: Programme = None, county: County = None) -> Response:
    i = 1 if lang_of(request) == "en" else 0
    run = latest_run()
    found = entries(run, Filters(kind, programme or None, county or None), client, limit=EXPORT_MAX) if run else []
    return download(_rows(found, i), COLUMNS, fmt, f"review-{kind}", lang_of(request))
