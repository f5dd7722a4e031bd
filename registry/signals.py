"""Login, logout and failed-login auditing: Django only announces these through signals."""
