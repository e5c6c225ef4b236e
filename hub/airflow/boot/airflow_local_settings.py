"""Imported by Airflow in each of its processes (this folder is on the PYTHONPATH hub.airflow.env gives Airflow):
the processes that fork the hub's tasks load what the tasks need first (hub.airflow.warm). Nothing here overrides
any of Airflow's settings."""

from hub.airflow.warm import warm

__all__: list[str] = []  # no setting or policy of Airflow's is replaced

warm()
