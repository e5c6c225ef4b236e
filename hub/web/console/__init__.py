"""The web console for caseworkers, auditors and staff: pages (sign-in, i18n, staff pages), case (the
caseworker's requests and records), audit (the auditor's pages); templates beside them. It never imports the JSON
API (hub.web.api, hub.web.routers), nor they it: both call hub.services."""
