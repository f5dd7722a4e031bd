"""Monitoring services (all writes) and the statistics.

- ``profiles``: reference data parsing/validation and the reference profile (pure).
- ``metrics``: drift, data-quality and performance statistics (pure numpy; ``compute_window_drift``).
- ``ingestion``: reference upload, predictions and labels ingestion, dirty windows.
- ``windows``: profile and window computation, the dirty-window sweep.
- ``health`` / ``alerts``: health status, alerts, notifications, retrain triggers.
- ``config``: per-model monitoring configuration.
"""
