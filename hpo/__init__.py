"""hpo package of wsad-hpo.

Importing it connects the science's safe points (``objectives.safepoints``: epoch ends,
ensemble members, repetitions) to the workers' stop flag (``workers.signals``): a stop
signal ends a computation there, never half-way.
"""

from objectives.safepoints import install as _install_safe_points
from workers.signals import safe_point as _stop_at_safe_point

_install_safe_points(_stop_at_safe_point)
