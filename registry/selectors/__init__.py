"""All reads of the registry app, already restricted to what the user may see."""

from .inventory import model_get, model_list, navigation_counts

__all__ = ["model_get", "model_list", "navigation_counts"]
