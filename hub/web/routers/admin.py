"""Administrators' routes: API clients and their tokens (a token is shown once; the hub keeps its SHA-256)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Path as PathParam

from core.ids import HEX32
from hub.services import clients
from hub.web.deps import Admin, Limit
from hub.web import examples as ex
from hub.web.errors import DocumentRoute
from hub.web.models import BAD_BODY, NOT_FOUND, ClientIn, ClientOut, ClientsOut, NewClientOut

router = APIRouter(route_class=DocumentRoute)


@router.post("/v1/clients", status_code=201, response_model=NewClientOut, tags=["admin"],
             responses={**BAD_BODY, **ex.answers(ex.NEW_CLIENT_OUT, 201)}, openapi_extra=ex.body(ex.CLIENT_IN))
def post_client(body: ClientIn, client: Admin) -> NewClientOut:
    """A new client and its token (shown once)."""
    try:
        new, token = clients.create_client(body.name, body.role, body.department, public_key=body.public_key,
                                           created_by=client.id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    row = clients.describe(new.id)
    return NewClientOut(**row, token=token)


@router.get("/v1/clients", response_model=ClientsOut, tags=["admin"], responses=ex.answers(ex.CLIENTS_OUT))
def get_clients(client: Admin, limit: Limit = 50,
                before: Annotated[str | None, Query(pattern=HEX32)] = None) -> ClientsOut:
    items = [ClientOut(**c) for c in clients.listing(before=before, limit=limit)]
    return ClientsOut(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.post("/v1/clients/{client_id}/deactivate", response_model=ClientOut, tags=["admin"],
             responses={**NOT_FOUND, **ex.answers({**ex.CLIENT_OUT, "active": False})})
def deactivate_client(client_id: Annotated[str, PathParam(pattern=HEX32)], client: Admin) -> ClientOut:
    """Revoke a client's token (and its console sessions) at once."""
    if client_id == client.id:
        raise HTTPException(422, "an admin cannot deactivate itself")
    if not clients.deactivate(client_id, by=client.id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such client")
    return ClientOut(**clients.describe(client_id))
