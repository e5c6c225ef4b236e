"""What every route depends on: the client behind the bearer token, its role, its rate limit, and the shapes of the
identifiers in paths and queries."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.ids import HEX32, HOUSEHOLD, MAX_ID
from hub.services import clients

bearer = HTTPBearer(auto_error=False)
_limiter = None


def limiter():
    global _limiter
    if _limiter is None:
        from hub.web.ratelimit import from_env

        _limiter = from_env()
    return _limiter


def _throttle(key: str) -> None:
    wait = limiter().take(key)
    if wait:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many requests: slow down",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


def current_client(request: Request,
                   creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> clients.Client:
    client = clients.authenticate(creds.credentials) if creds else None
    if client is None:
        if creds:  # guessing tokens costs the guesser's address its budget
            _throttle(f"addr:{request.client.host if request.client else '-'}")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    _throttle(f"client:{client.id}")
    return client


def role_required(*roles: str):
    """A dependency admitting only clients of these roles (403 for the others)."""
    def check(client: Annotated[clients.Client, Depends(current_client)]) -> clients.Client:
        if client.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"only {' or '.join(roles)} clients may do this")
        return client
    return check


Anyone = Annotated[clients.Client, Depends(current_client)]
Department = Annotated[clients.Client, Depends(role_required("department"))]
Staff = Annotated[clients.Client, Depends(role_required("staff"))]
Auditor = Annotated[clients.Client, Depends(role_required("auditor"))]
Admin = Annotated[clients.Client, Depends(role_required("admin"))]
Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID, description="continue below this id (from `next_before`)")]
RequestId = Annotated[str, PathParam(pattern=HEX32, description="the request's id")]
HouseholdId = Annotated[str, PathParam(pattern=HOUSEHOLD, description="the household's id (a keyed pseudonym)")]
