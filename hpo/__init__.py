"""hpo package of wsad-hpo."""
