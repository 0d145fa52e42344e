"""CDS Hooks 2.0 prefetch tokens that identify the user.

The hook table is stated in ``service.engine.hooks``: the rule language needs it, and the
engine imports nothing from this layer.
"""

from __future__ import annotations

# CDS Hooks 2.0 prefetch tokens that identify the user, besides ``context.*`` fields, each with
# the resource type ``context.userId`` must name for the token to have a value.
USER_TOKENS: dict[str, str] = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
