"""This hub's identity among federated platforms, and its peers.

The settings (core.settings): HUB_DCI_ID, this hub's platform code, its DCI sender id (default HUB-<HUB_REGION_CODE>,
HUB-210300: Anshan's hub); HUB_DCI_URL, where peers reach this hub's DCI API for their callbacks (default HUB_API_URL
+ /dci); HUB_DCI_PEERS, a JSON file of the peers this hub asks and calls back (connectors.dci_remote); unset: none.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from connectors.dci_remote import Peer, PeersError, load_peers
from core.settings import settings

PREFIX = "/dci"  # DESIGN.md reserves /dci/registry/... for this API
# where, under public_url(), peers send their answers to this hub's asynchronous messages (hub.dci.service serves them)
CALLBACK_PATHS = {"on-search": "/registry/on-search", "on-subscribe": "/registry/on-subscribe",
                  "on-unsubscribe": "/registry/on-unsubscribe", "txn-on-status": "/registry/txn/on-status"}


def platform_id() -> str:
    return settings().dci_id


def public_url() -> str:
    cfg = settings()
    return (cfg.dci_url or cfg.api_url.rstrip("/") + PREFIX).rstrip("/")


@lru_cache(maxsize=8)
def _peers(path: str, _mtime: float) -> tuple[Peer, ...]:
    return load_peers(path)


def peers() -> tuple[Peer, ...]:
    """The configured peers (re-read when the file changes); () when HUB_DCI_PEERS is unset."""
    path = settings().dci_peers
    if not path:
        return ()
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        raise PeersError("HUB_DCI_PEERS names a file that cannot be read") from None
    return _peers(path, mtime)


def peer(platform: str) -> Peer | None:
    return next((p for p in peers() if p.id == platform), None)
