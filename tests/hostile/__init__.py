"""Hostile callers and hostile FHIR servers against a production `spinehip serve`."""
