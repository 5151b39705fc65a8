"""storage package of wsad-hpo."""
