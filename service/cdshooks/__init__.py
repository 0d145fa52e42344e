"""The CDS Hooks 2.0 protocol layer: discovery, requests, prefetch, responses, feedback."""
