"""Block documents the example deployments use, as code (see blocks/README.md)."""
