"""Household records as a department may read them (cut by the access policy, signed by the hub), the policy
itself, the key that checks a record's signature, and notifications of a record's changes (webhooks)."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Annotated

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter, HTTPException, Query, Request, Response

from core.crypto import keyring
from hub.rules.policy import policy
from hub.services.reads import RecordView, read_record_with_token_async
from hub.stages.notify import BadSubscription, subscribe
from hub.web.deps import Anyone, Department, DepartmentBearer, HouseholdId, aware
from hub.web import examples as ex
from hub.web.errors import DocumentRoute
from hub.web.models import (
    BAD_BODY,
    NOT_FOUND,
    IsoMoment,
    PolicyRuleOut,
    Purpose,
    RecordBody,
    RecordOut,
    SubscriptionIn,
    SubscriptionOut,
)

router = APIRouter(route_class=DocumentRoute)


@router.get("/v1/households/{household_id}/record", response_model=RecordOut, tags=["records"],
            responses={**NOT_FOUND, **ex.answers(ex.RECORD_OUT)})
async def get_record(
    request: Request,
    household_id: HouseholdId,
    client: DepartmentBearer,
    purpose: Annotated[Purpose, Query(description="why the department reads the record")],
    as_of: Annotated[IsoMoment, Query(description="the record as the hub had published it then "
                                               "(transaction time)")] = None,
    valid_at: Annotated[IsoMoment, Query(description="the latest record describing the household no "
                                                  "later than this moment (valid time)")] = None,
) -> Response:
    """The household's record, cut to what the access policy grants this department for this purpose. Only for
    a household the department has an open case for (its request with a valid authorization, or assistance it
    grants); otherwise 404, the same as for a household that does not exist."""
    aware(as_of=as_of, valid_at=valid_at)
    # on the event loop (no worker thread) where the store has an asyncio engine: the app's, while it serves
    view = await read_record_with_token_async(getattr(request.app.state, "async_engines", None), client.token,
                                              household_id, purpose, as_of, valid_at, client.gone)
    return Response(_body(view), media_type="application/json")


def _body(view: RecordView) -> bytes:
    """The view as RecordOut's JSON, made once per view and kept with it (hub.services.reads caches views). Made
    by RecordBody, whose ``content`` is the signed dict as it is: RecordOut's typed content only documents it."""
    body = view.rendered.get("json")
    if body is None:
        fields = {f.name: getattr(view, f.name) for f in dataclass_fields(view) if f.name != "rendered"}
        body = view.rendered["json"] = RecordBody(**fields).model_dump_json().encode("utf-8")
    return body


@router.get("/v1/policy", response_model=list[PolicyRuleOut], tags=["records"], responses=ex.answers(ex.POLICY_OUT))
def get_policy(client: Anyone) -> list[PolicyRuleOut]:
    """The access policy: what each department may read per purpose. A department sees the rules that apply
    to it; auditors, staff and admins see them all."""
    rules = [r for r in policy() if client.role != "department"
             or any(r.matches(client.department or "", p) for p in r.purposes)]
    return [PolicyRuleOut(name=r.name, description=r.description, departments=list(r.departments),
                          purposes=list(r.purposes), returns=r.returns) for r in rules]


@router.get("/v1/keys/record-signing", tags=["records"], responses=ex.answers(
    ex.SIGNING_KEY_OUT, description="the key: algorithm, raw_base64url (32 bytes), pem (SubjectPublicKeyInfo)"))
def record_signing_key(client: Anyone) -> dict:
    """The hub's Ed25519 public key, to check a record's signature offline (over the canonical JSON of
    `content`: keys sorted, no spaces, UTF-8)."""
    key = keyring().public_key
    return {"algorithm": "Ed25519", "raw_base64url": keyring().public_key_b64(),
            "pem": key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")}


@router.post("/v1/subscriptions", status_code=201, response_model=SubscriptionOut, tags=["notifications"],
             responses={**BAD_BODY, **ex.answers(ex.SUBSCRIPTION_OUT, 201)}, openapi_extra=ex.body(ex.SUBSCRIPTION_IN))
def post_subscription(body: SubscriptionIn, client: Department) -> SubscriptionOut:
    """Change notifications (record.changed) for the households the department has requests for."""
    try:
        sub_id, secret = subscribe(client.department, client.id, body.url)
    except BadSubscription as exc:
        raise HTTPException(422, str(exc)) from None
    except ValueError:  # urlsplit: e.g. an unclosed [IPv6 address
        raise HTTPException(422, "url: not a valid address") from None
    return SubscriptionOut(id=sub_id, url=body.url, secret=secret)
