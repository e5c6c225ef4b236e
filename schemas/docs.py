"""Great Expectations Data Docs for staff, without personal data.

A validation result as GX makes it lists the unexpected values (ID numbers, names, amounts). ``scrub`` keeps
only counts and the expectations themselves, so the result can be stored beside the validation run and
rendered later, by any process, with GX's own Data Docs renderer (``render``). The rendered page is made
self-contained: GX's pages load scripts and styles from public CDNs, which a government intranet does not
reach and which would tell third parties what staff look at; those tags are dropped and GX's bundled
stylesheet is served by the console instead.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path

# great_expectations is imported inside static_dir() and render(), deliberately: it is heavy, and scrub, pack and
# unpack (what every validation run uses) need none of it. render() imports schemas.expectations too: a process that
# renders a page has not necessarily validated anything, and GX knows the hub's own expectations only once their
# classes are defined.

# the only parts of an expectation's result kept: counts, no values
COUNTS = ("element_count", "missing_count", "missing_percent", "unexpected_count", "unexpected_percent",
           "unexpected_percent_total", "unexpected_percent_nonmissing")


def scrub(result: dict, *, run_name: str | None, run_time: str) -> dict:
    """A GX validation result (``to_json_dict()``) with every value from the data removed."""
    out = {k: result[k] for k in ("success", "suite_name", "statistics") if k in result}
    out["results"] = []
    for r in result.get("results", []):
        info = r.get("exception_info") or {}
        raised = bool(info.get("raised_exception")) if isinstance(info, dict) else False
        out["results"].append({
            "success": r.get("success"),
            "expectation_config": r.get("expectation_config"),
            "result": {k: v for k, v in (r.get("result") or {}).items() if k in COUNTS},
            # an exception's text may quote the data: only the fact that one was raised is kept
            "exception_info": {"raised_exception": raised, "exception_message": "the check could not run" if raised
                               else None, "exception_traceback": None},
            "meta": {},
        })
    out["meta"] = {
        "great_expectations_version": (result.get("meta") or {}).get("great_expectations_version"),
        "run_id": {"run_name": run_name or "hub", "run_time": run_time},
        "batch_spec": {"batch_data": "PandasDataFrame"},
    }
    return out


def pack(doc: dict) -> str:
    """Compact text for the store (zlib, base64)."""
    return base64.b64encode(zlib.compress(json.dumps(doc, separators=(",", ":")).encode("utf-8"), 9)).decode("ascii")


def unpack(text: str) -> dict:
    return json.loads(zlib.decompress(base64.b64decode(text)).decode("utf-8"))


def static_dir() -> Path:
    """GX's bundled Data Docs assets (stylesheets, images, fonts)."""
    import great_expectations

    return Path(great_expectations.__file__).parent / "render" / "view" / "static"


_EXTERNAL = re.compile(r'<(script|link|img)\b[^>]*\b(?:src|href)="https?://[^"]*"[^>]*>(?:\s*</script>)?', re.I)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_LOCAL_CSS = """<style>
.collapse{display:block!important} body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0 1rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}
.hub-banner{background:#f3f6fa;border-bottom:1px solid #cdd6e0;padding:.6rem 0;margin-bottom:1rem}
.hub-banner a{margin-right:1rem}
</style>"""


def render(doc: dict, *, static_url: str, banner: str = "") -> str:
    """The Data Docs page of one stored (scrubbed) validation result, as GX renders it."""
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    import schemas.expectations  # noqa: F401 (registers the hub's own expectations: GX cannot load a result without)

    result = expectationSuiteValidationResultSchema.load(doc)
    html = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))
    html = _SCRIPT.sub("", _EXTERNAL.sub("", html))
    html = re.sub(r'(?:\.\./)+static/', static_url.rstrip("/") + "/", html)
    html = re.sub(r'href="(?:\.\./)+(?:index|expectations/[^"]*)\.html"', 'href="#"', html)
    html = html.replace("</head>", _LOCAL_CSS + "</head>", 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, html, count=1)
