"""Residents as the tests make them: a sign-in through the simulated identity provider (its test hook stands for
the login page a browser would fill in), a request whose members sign on their phones, and their invitations."""

from __future__ import annotations

import urllib.parse

BASE = "http://127.0.0.1:8000"  # the hub's address as the provider sees it (a loopback callback)


def sign_in(server, id_number: str, base: str = BASE) -> str:
    """A resident session token for the person of ``id_number``: hub.services.residents' begin and finish of a
    sign-in, with the provider of ``server`` (agencies.server.AgencyServer) vouching for the person."""
    from hub.services import residents

    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(residents.begin_login("/m/", base)).query))
    code = server.identity.sign_in(id_number, client_id=q["client_id"], redirect_uri=q["redirect_uri"],
                                   state=q["state"], nonce=q["nonce"], code_challenge=q["code_challenge"])
    token, _ = residents.finish_login(q["state"], code, base)
    return token


def browser(app):
    """A test browser of the hub's app at BASE (redirects not followed: each step is looked at)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url=BASE, follow_redirects=False)


def signed_in_browser(app, server, id_number: str, next_: str = "/m/"):
    """A browser of the resident of ``id_number``, signed in through /m/login and /m/auth/callback (the provider of
    ``server`` issuing the code its login page would)."""
    c = browser(app)
    go = c.get("/m/login", params={"next": next_})
    assert go.status_code == 303
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(go.headers["location"]).query))
    code = server.identity.sign_in(id_number, client_id=q["client_id"], redirect_uri=q["redirect_uri"],
                                   state=q["state"], nonce=q["nonce"], code_challenge=q["code_challenge"])
    back = c.get("/m/auth/callback", params={"state": q["state"], "code": code})
    assert back.status_code == 303 and back.headers["location"] == next_, back.text
    return c


def resident(server, id_number: str):
    """The signed-in resident (hub.services.residents.Resident) of ``id_number``."""
    from hub.services import residents

    return residents.resident(sign_in(server, id_number))


def signing_request(k: int, department: str = "MZ-210302", sources=None, **terms) -> tuple[str, dict]:
    """Household k's request for ``sources`` (default: every agency source) made with mobile signing (码上办):
    (its id, its document)."""
    from hub.stages.intake import create_request
    from tests.support.households import ALL_SOURCES, sample

    doc = sample(k, sources=list(sources or ALL_SOURCES))
    doc.pop("authorization", None)
    doc["mobile_signing"] = dict(terms)
    return create_request(doc, department=department), doc


def tokens(request_id: str, department: str = "MZ-210302") -> list[str]:
    """The members' invitation tokens, in the request's member order."""
    from hub.services.residents import invitation_links

    return [i.path.removeprefix("/m/s/") for i in invitation_links(request_id, department)]
