"""Access: team-owned service accounts, the identity provider's subjects, and the mapping
from the provider's groups to roles and teams. Imported by ``registry.models``."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from mlops_portal import clock


class ServiceAccount(models.Model):
    """A non-person account a pipeline signs in as, owned by a team (not by its author).

    It is a user without a password (``user``), member of its team, so permissions and tokens
    work as for people; deactivating it revokes its tokens (``registry.services.accounts``)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="service_account")
    team = models.ForeignKey("registry.Team", on_delete=models.PROTECT, related_name="service_accounts")
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} (service account of {self.team})"


class ExternalIdentity(models.Model):
    """Who a user is at the OpenID Connect provider: its issuer and subject (``sub``)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity")
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    last_login_at = models.DateTimeField(null=True, blank=True)
    groups = models.JSONField(default=list, blank=True)  # the groups claim at the last login
    # What the mapping granted at the last login ({"groups": [names], "teams": [slugs]}): taken
    # away at the next login when no longer granted, even if its mapping was deleted meanwhile.
    granted = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_unique_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class GroupMapping(models.Model):
    """One value of the provider's groups claim and what it grants: a role (a group such as
    ``reviewer``), membership of a team, or admin. Applied on every sign-in; a grant whose
    claim value is gone is taken away. Changed only through audited services (the admin)."""

    claim_value = models.CharField(max_length=200, unique=True, help_text="A value of the groups claim.")
    group = models.ForeignKey(Group, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    team = models.ForeignKey("registry.Team", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    grants_admin = models.BooleanField(default=False, help_text="Staff and superuser in the portal.")

    class Meta:
        ordering = ["claim_value"]
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=False) | Q(team__isnull=False) | Q(grants_admin=True),
                name="group_mapping_grants_something",
            )
        ]

    def __str__(self) -> str:
        return f"{self.claim_value} → {', '.join(self.grants()) or 'nothing'}"

    def grants(self) -> list[str]:
        granted = [f"role {self.group.name}"] if self.group_id else []
        granted += [f"team {self.team.name}"] if self.team_id else []
        return granted + (["admin"] if self.grants_admin else [])

    def clean(self) -> None:
        if not (self.group_id or self.team_id or self.grants_admin):
            raise ValidationError("Map the claim value to a role, a team or admin.")


class Heartbeat(models.Model):
    """The last time a process proved it is alive (``worker``: a beat task the worker runs);
    read by ``/healthz``."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} alive at {self.beat_at:%Y-%m-%d %H:%M:%S}"
