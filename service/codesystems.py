"""Code systems this service defines, named once for the cards that offer codes and the store
that checks what comes back."""

OVERRIDE_REASON_SYSTEM = "http://spinehip-cds.org/fhir/CodeSystem/override-reason"
