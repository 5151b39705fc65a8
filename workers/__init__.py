"""workers package of wsad-hpo."""
