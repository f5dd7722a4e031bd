"""Python client and command line for the MLOps Portal API (no Django dependency)."""

from .client import Health, PortalClient, PortalError, Promotion

__all__ = ["Health", "PortalClient", "PortalError", "Promotion"]
