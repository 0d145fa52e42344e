"""spinehip-cds: a CDS Hooks 2.0 service that helps tell spine-origin from hip-origin pain."""

__version__ = "0.1.0"
