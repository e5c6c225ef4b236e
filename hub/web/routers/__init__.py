"""The JSON API's routers, one per area (its OpenAPI tags): meta, requests, records (and notifications), assistance,
audit, staff (validation, sources), admin. hub/web/api.py assembles them; none imports the console."""
