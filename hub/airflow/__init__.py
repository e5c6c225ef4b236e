"""hub/airflow"""
