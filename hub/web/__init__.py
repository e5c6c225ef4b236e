"""The hub's web faces: the JSON API (api.py and routers/), the DCI Social Registry API (dci.py) and the console
(console*.py, templates/), put together by app.py. The JSON API and the console never import each other; what both
serve comes from hub.services."""
