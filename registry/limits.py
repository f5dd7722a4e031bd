"""The length of a model card's prose, and the names a model may not take: one rule each for the
form, the API and the services."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator

# A card's prose fields (a model's description, intended use and limitations, a version's
# description) hold at most this many characters. All three of a model's at the limit still fit
# in one API body (settings.API_MAX_BODY_BYTES, 1 MiB) in any characters, so whatever the form
# accepts a pipeline can send too.
CARD_TEXT_MAX_LENGTH = 50_000

# The field options of a card's prose (``models.TextField(**CARD_TEXT)``): ``max_length`` bounds
# the form and serializer fields Django and DRF build from it; the validator makes ``full_clean``
# (the services) refuse more too, which a TextField's max_length alone does not.
CARD_TEXT = {
    "blank": True,
    "max_length": CARD_TEXT_MAX_LENGTH,
    "validators": [MaxLengthValidator(CARD_TEXT_MAX_LENGTH)],
}

# Names the portal's pages use where a model's name goes (``/models/new/`` registers a model).
RESERVED_MODEL_NAMES = frozenset({"new"})


def validate_model_name_free(value: str) -> None:
    """A model named like a page of the portal could never be opened: its address is that page."""
    if value in RESERVED_MODEL_NAMES:
        raise ValidationError(f"'{value}' is the address of a portal page (/models/{value}/); choose another name.")
