"""Set-up of the stage tests."""

from __future__ import annotations

import pytest

# Modules whose tests count what the whole store holds (notifications not fanned out yet, deliveries pending): each
# of their tests runs on a store of its own (the own_store fixture), so what another test left there, in this module
# or another, run before it in whatever order, is not counted.
OWN_STORE_MODULES = {"tests.hub.stages.test_notify"}


@pytest.fixture(autouse=True)
def _store_of_its_own(request):
    if request.module.__name__ in OWN_STORE_MODULES:
        request.getfixturevalue("own_store")
