"""Every source the hub asks, wired: the agencies' (connectors.registry) and ``remote_registry``, the federated peers
asked over the DCI API (connectors.dci_remote, wired to the store, the keys and the ledger by hub.federation.client).

What needs every source, the remote one included (the pipeline's fetch, intake's list of sources, the health
probe), takes it from here; connectors.registry knows agencies only.
"""

from __future__ import annotations

from connectors import registry
from connectors.base import Policy, Source
from connectors.dci_remote import PEERS_BASE, RemoteRegistrySource
from hub.federation.client import remote_registry

# every source's key: the agencies', then the federated ones (configured by HUB_DCI_PEERS, none when it is unset)
KEYS: tuple[str, ...] = (*registry.SOURCES, *registry.FEDERATED)


def base_url(key: str, agencies_url: str) -> str:
    """Base URL of a source: its agency's, read from the agencies' index (HUB_AGENCIES_URL); for a federated source
    connectors.dci_remote.PEERS_BASE (its addresses are the peers')."""
    if key in registry.FEDERATED:
        return PEERS_BASE
    return registry.base_url(key, agencies_url)


def connector(key: str, base: str, secret: str | None = None,
              policy: Policy | None = None) -> Source | RemoteRegistrySource:
    """A connector for ``key`` at ``base`` (connectors.registry.connector), or for ``remote_registry`` the DCI client
    with the peers of HUB_DCI_PEERS."""
    if key in registry.FEDERATED:
        return remote_registry(policy=policy)
    return registry.connector(key, base, secret, policy)
