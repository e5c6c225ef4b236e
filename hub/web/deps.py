"""What every route depends on: the client behind the bearer token, its role, its rate limit, and the shapes of the
identifiers, pages and moments in paths and queries.

The rate limiter is the app's (hub.web.app.create_app keeps it on ``app.state.limiter``): each app holds its own
buckets, and a test or a benchmark hands its app the limiter it wants."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from core.ids import HEX32, HOUSEHOLD, MAX_ID
from hub.services import clients
from hub.web.models import IsoMoment
from hub.web.ratelimit import Limiter

bearer = HTTPBearer(auto_error=False)


def limiter(request: Request) -> Limiter:
    """The app's rate limiter (hub.web.app.create_app)."""
    return request.app.state.limiter


def _throttle(request: Request, key: str) -> None:
    wait = limiter(request).take(key)
    if wait:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many requests: slow down",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _unauthorized() -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                         headers={"WWW-Authenticate": "Bearer"})


def _admit(request: Request, client: clients.Client | None, roles: tuple[str, ...] = ()) -> clients.Client:
    """401 for no client (a guessed token costs the guesser's address its budget), 403 for a role not in ``roles``
    (when given), 429 over the client's rate; else the client."""
    if client is None:
        _throttle(request, f"addr:{request.client.host if request.client else '-'}")
        raise _unauthorized()
    _throttle(request, f"client:{client.id}")
    return _of_role(client, roles) if roles else client


def _of_role(client: clients.Client, roles: tuple[str, ...]) -> clients.Client:
    if client.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only {' or '.join(roles)} clients may do this")
    return client


def current_client(request: Request,
                   creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> clients.Client:
    if not creds:
        raise _unauthorized()
    return _admit(request, clients.authenticate(creds.credentials))


def role_required(*roles: str):
    """A dependency admitting only clients of these roles (403 for the others)."""
    def check(client: Annotated[clients.Client, Depends(current_client)]) -> clients.Client:
        return _of_role(client, roles)
    return check


@dataclass(frozen=True)
class Bearer:
    """The client of a route whose own statement checks its token again (the record read:
    hub.services.reads.read_record_with_token): admitted before the route as ``current_client`` and
    ``role_required`` admit (401, 429, 403), from the process's recent lookups (hub.services.clients.
    recently_authenticated), so that the route's statement is the read's only round trip; ``token`` for that
    statement, and ``gone`` for a client it no longer finds active (401)."""

    client: clients.Client
    token: str

    def gone(self, client: clients.Client | None) -> None:
        if client is None:
            raise _unauthorized()


def bearer_of(*roles: str):
    """A dependency giving the route a ``Bearer`` admitting only clients of these roles."""
    async def admitted(request: Request,
                       creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Bearer:
        # on the event loop when the process knows the token (no thread hop: the read's only cost is its own),
        # else the store is asked in a worker thread, as a sync dependency would be
        if not creds:
            raise _unauthorized()
        client = clients.recent(creds.credentials)
        if client is None:
            client = await run_in_threadpool(clients.recently_authenticated, creds.credentials)
        return Bearer(_admit(request, client, roles), creds.credentials)
    admitted.authenticates = True
    return admitted


current_client.authenticates = True  # what tests/hub/web/test_access.py finds on every route

Anyone = Annotated[clients.Client, Depends(current_client)]
Department = Annotated[clients.Client, Depends(role_required("department"))]
DepartmentBearer = Annotated[Bearer, Depends(bearer_of("department"))]
Staff = Annotated[clients.Client, Depends(role_required("staff"))]
Auditor = Annotated[clients.Client, Depends(role_required("auditor"))]
Admin = Annotated[clients.Client, Depends(role_required("admin"))]
Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID, description="continue below this id (from `next_before`)")]
RequestId = Annotated[str, PathParam(pattern=HEX32, description="the request's id")]
HouseholdId = Annotated[str, PathParam(pattern=HOUSEHOLD, description="the household's id (a keyed pseudonym)")]
Moment = Annotated[IsoMoment, Query(description="ISO 8601 with a time zone offset")]


def in_range(moment: dt.datetime) -> bool:
    """Whether the moment has a UTC equivalent (the store keeps UTC): 0001-01-01T00:00+08:00 has none."""
    try:
        moment.astimezone(dt.timezone.utc)
    except OverflowError:
        return False
    return True


def aware(**moments: dt.datetime | None) -> None:
    """422 unless each moment given has a time zone offset and a UTC equivalent."""
    for name, moment in moments.items():
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(422, f"{name}: needs a time zone offset")  # "field: ..." names the error's field
        if moment is not None and not in_range(moment):
            raise HTTPException(422, f"{name}: out of range")
