"""Small real tables shipped with the package (see each ATTRIBUTION.md)."""
