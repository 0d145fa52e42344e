"""Reproducible performance measurements of spinehip-cds: ``python -m benchmarks`` (``make bench``).

Every figure is printed beside a reference measured in the same run (the orjson floor, the naive
full-validation path, a bare Flask endpoint, the FHIR server's own slowest query), because an
absolute number on an unknown machine says little; ``benchmarks/RESULTS.md`` keeps the last run.
"""
