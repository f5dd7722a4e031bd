"""Receivers for access events Django and django-axes only announce through signals: the time
of each sign-in (for step-up, ``registry.stepup``) and lockouts (audited)."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from registry.services.audit import AuditContext
from registry.stepup import mark_authenticated


@receiver(user_logged_in, dispatch_uid="registry_access_auth_time")
def remember_sign_in_time(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        mark_authenticated(request)


@receiver(user_locked_out, dispatch_uid="registry_access_locked_out")
def audit_locked_out(sender, request, username=None, ip_address=None, **kwargs):
    from registry.services.accounts import login_locked_out

    login_locked_out(username=username, ip=ip_address, context=AuditContext.from_request(request))
