"""Federation: the hub speaks the DCI Social Registry API (../shared/dci/social_api_v1.0.0.yaml) to other
verification platforms (部省联网, 跨地区核对): the province's and the ministry's platforms and other cities' hubs.

- As a server (hub.web.dci under /dci/registry/...): synchronous and asynchronous search, subscribe,
  unsubscribe and notify, transaction status; a platform is an API client of role ``federation`` with its code and
  Ed25519 public key, under the same authentication, consent gate, access policy and ledger as a department
  (hub.dci.service).
- As a client: the source ``remote_registry`` (connectors.dci_remote) asks peers about a request's members behind
  the consent gate; hub.federation.client wires it to the store, the keys and the ledger, and sends subscriptions, status
  queries and callbacks (hub.dci.outbox).
- The envelope, its signature scheme and its error codes: connectors.envelope.

This package sits just below hub.web (which serves it) and imports only from the floors below it (hub.services
and down, never hub.web, hub.cli or hub.demo); its ``__init__`` imports nothing.
"""

from __future__ import annotations
