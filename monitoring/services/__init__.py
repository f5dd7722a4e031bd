"""Monitoring services (all writes). The pure statistics live beside them, outside the services:
``monitoring.stats`` (binning, drift and data quality) and ``monitoring.performance``
(scikit-learn metrics of labelled predictions).

- ``profiles``: reference data parsing/validation and the reference profile (pure).
- ``reference_profiles``: computing a stored reference's profile, failed profiles, the pending sweep.
- ``ingestion``: reference upload, predictions and labels ingestion.
- ``windows``: window computation (counts and metrics of one window).
- ``window_marks``: dirty-window marks: claim and lease, done, failed, the sweep.
- ``health`` / ``alerts``: health status (one check per reason kind), alerts, retrain triggers.
- ``config``: per-model monitoring configuration.
"""
