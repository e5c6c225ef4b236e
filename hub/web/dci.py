"""The DCI Social Registry API's routes, under /dci (DESIGN.md): /dci/registry/sync/search and the rest of the spec's
paths. Every route needs a bearer token of a ``federation`` client (hub.web.deps.current_client, with its rate limits);
the answers of the dependencies' refusals (401, 403, 429) take the spec's forms here."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors import envelope as env
from hub.dci.outbox import deliver
from hub.dci.service import OPS, Op, error_answer, process
from hub.federation.config import PREFIX
from hub.services import clients
from hub.web.deps import role_required

router = APIRouter(prefix=PREFIX)
Federation = Annotated[clients.Client, Depends(role_required("federation"))]


class DciErrorItem(BaseModel):
    code: str = Field(description="err.* (the spec's Error codes)")
    message: str = Field(description="why, never quoting the message")


class HttpErrorOut(BaseModel):
    errors: list[DciErrorItem]


class AckError(BaseModel):
    code: Literal[env.ERROR_CODES]  # type: ignore[valid-type]
    message: str


class AckMessage(BaseModel):
    ack_status: Literal["ACK", "NACK", "ERR"]
    timestamp: str
    correlation_id: str = Field(description="this hub's id of the exchange (for /registry/txn/status)")
    error: AckError | None = None


class AckOut(BaseModel):
    message: AckMessage


class CallbackHeaderOut(BaseModel):
    version: str
    message_id: str
    message_ts: str
    action: str
    status: Literal["rcvd", "pdng", "succ", "rjct"]
    status_reason_code: Literal[env.HEADER_CODES] | None = None  # type: ignore[valid-type]
    status_reason_message: str | None = None
    total_count: int
    completed_count: int
    sender_id: str
    receiver_id: str | None = None
    is_msg_encrypted: bool


class EnvelopeOut(BaseModel):
    signature: str = Field(description="Ed25519 over the header and message (see README, Federation)")
    header: CallbackHeaderOut
    message: dict | None = Field(None, description="SearchResponse or TxnStatusResponse; none when refused")
    errors: list[DciErrorItem] | None = Field(None, description="when refused: as in HttpErrorResponse")


SIGNATURE = ('Signature: namespace="spdci", kidId="{sender_id}|{key_id}|ed25519", algorithm="ed25519", '
             'created="...", expires="...", headers="(created) (expires) digest", signature="..."')


def _body_schema(op: Op) -> dict:
    header_required = ["message_id", "message_ts", "action"] + (["status"] if op.callback_header
                                                                 else ["sender_id", "total_count"])
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["header", "message"] if op.message_required else ["header"],
        "properties": {
            "signature": {"type": "string", "description": SIGNATURE},
            "header": {"type": "object", "required": header_required, "properties": {
                "version": {"type": "string", "enum": [env.VERSION]},
                "message_id": {"type": "string", "maxLength": 99},
                "message_ts": {"type": "string", "format": "date-time"},
                "action": {"type": "string", "enum": [op.action]},
                "sender_id": {"type": "string"}, "receiver_id": {"type": "string"},
                "sender_uri": {"type": "string", "format": "uri"},
                "total_count": {"type": "integer"}, "is_msg_encrypted": {"type": "boolean"},
                **({"status": {"type": "string", "enum": list(env.STATUSES)}} if op.callback_header else {})}},
            "message": {"type": "object"}}}}}}}


def _responses(op: Op) -> dict:
    model = EnvelopeOut if op.sync else AckOut
    form = ("the signed answer" if op.sync else "the acknowledgement (ACK)")
    refusal = ("a signed envelope, header status rjct with its reason code, and errors" if op.sync
               else "the acknowledgement with ack_status ERR and the error")
    out = {
        200: {"model": model, "description": form},
        400: {"model": model, "description": f"the message is refused: {refusal}"},
        401: {"model": HttpErrorOut, "description": "err.request.unauthorized (no valid bearer token), "
              "err.signature.missing or err.signature.invalid"},
        403: {"model": HttpErrorOut, "description": "err.request.forbidden (not a federated platform's token) or "
              "err.sender_id.invalid"},
        429: {"model": model, "description": f"err.request.too_many_requests: {refusal}; wait as Retry-After says",
              "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
        503: {"model": model, "description": f"err.service.unavailable: {refusal}"},
    }
    if op.reply is None:
        out[404] = {"model": AckOut, "description": "err.request.not_found: no exchange of this hub awaits it"}
    return out


def _endpoint(op: Op):
    async def endpoint(request: Request, client: Federation) -> Response:
        raw, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > env.MAX_BODY_BYTES:
                break
            raw.append(chunk)
        body = b"".join(raw) if size <= env.MAX_BODY_BYTES else b" " * (env.MAX_BODY_BYTES + 1)
        answer = await run_in_threadpool(process, op.name, client, body)
        task = BackgroundTask(deliver, answer.deliver) if answer.deliver else None
        return JSONResponse(answer.body, status_code=answer.status, background=task)

    endpoint.__name__ = f"dci_{op.name}"
    return endpoint


for _op in OPS.values():
    router.add_api_route(_op.path, _endpoint(_op), methods=["POST"], tags=["dci"],
                         summary=f"{_op.path}: {_op.summary}", operation_id=f"dci_{_op.name}",
                         responses=_responses(_op), openapi_extra=_body_schema(_op), response_model=None)

_BY_PATH = {PREFIX + o.path: o for o in OPS.values()}
_CODES = {401: "err.request.unauthorized", 403: "err.request.forbidden", 429: "err.request.too_many_requests"}


def install(app) -> None:
    """Mount the DCI routes; their paths' refusals by the dependencies (401, 403, 429) in DCI's form, other errors
    to the handler installed before (hub.web.errors)."""
    app.include_router(router)
    previous = app.exception_handlers.get(StarletteHTTPException)

    async def dci_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        op = _BY_PATH.get(request.url.path)
        if op is None or exc.status_code not in _CODES:
            return await previous(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else "refused"
        answer = await run_in_threadpool(error_answer, op, env.DciError(_CODES[exc.status_code], detail,
                                                                        status=exc.status_code))
        return JSONResponse(answer.body, status_code=answer.status, headers=exc.headers)

    app.add_exception_handler(StarletteHTTPException, dci_http_error)
