"""Airflow as the DAG tests reach it: the DAGs folder, and a DAG synced to the metadata database."""

from __future__ import annotations

from hub.airflow.env import REPO_ROOT

DAGS = REPO_ROOT / "dags"


def serialized_dag(dag_id: str):
    """Sync the dags-folder bundle to the metadata database (dag.test() needs the DAG serialized)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = manager.get_bundle("dags-folder")
    bundle.initialize()
    bag = BundleDagBag(dag_folder=str(bundle.path), bundle_path=bundle.path, bundle_name=bundle.name)
    sync_bag_to_db(bag, bundle.name, bundle.version)
    return bag.get_dag(dag_id)
