"""This hub as a DCI client: the ``remote_registry`` source wired to the store, the keys and the ledger (client),
this hub's identity and peers (config), and every source the hub asks, the remote one included (sources).

Below hub.stages, hub.services, hub.dci and hub.web: it imports only hub.rules, hub.airflow and the floors under hub/.
"""
