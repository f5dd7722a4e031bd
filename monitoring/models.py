"""Monitoring domain: reference profiles, predictions, labels, metrics, health, alerts."""
