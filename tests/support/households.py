"""Households of the simulated population (seed 7, 50 households) as the tests ask for them: a sample request,
a household of some archetype or with several members, a request applied and published."""

from __future__ import annotations

from functools import lru_cache

ALL_SOURCES = ("household", "tax", "social_insurance", "provident_fund", "real_estate", "market_entity",
               "vehicles_vessels", "bank", "securities", "commercial_insurance", "internet_finance")


def sample(k: int = 3, **kw) -> dict:
    """The request document of household ``k`` (agencies.requests.sample_request, seed 7 of 50 households)."""
    from agencies.requests import sample_request

    return sample_request(seed=7, households=50, k=k, **kw)


@lru_cache(maxsize=1)
def population():
    """The simulated population behind sample() (made once)."""
    from agencies.server import Population

    return Population(7, 50)


def household_with_several_members(min_members=3):
    """The first household with at least ``min_members`` members of status normal."""
    from agencies.population import household_in_population

    return next(k for k in range(50) if sum(p.status == "normal" for p in household_in_population(7, 50, k).members) >= min_members)


def household_of(archetype: str, skip: int = 0) -> int:
    """The index of the household of ``archetype`` after the first ``skip`` of them."""
    pop = population()
    found = [h.index for h in pop.households if pop._facts(h.index).truth.archetype == archetype]
    return found[skip]


def applied(k: int, sources=ALL_SOURCES) -> str:
    """Household k's request for ``sources``, created and run inline to published; its id."""
    from hub.stages.intake import create_request
    from hub.stages.pipeline import run_inline

    request_id = create_request(sample(k, sources=list(sources)))
    assert run_inline(request_id).status == "published"
    return request_id
