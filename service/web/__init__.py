"""The thin Flask layer: HTTP in, protocol objects to the pipeline, JSON out."""
