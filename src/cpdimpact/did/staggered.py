"""Staggered-adoption (group-time) difference-in-differences: planned, not yet implemented.

This module deliberately defines no estimator yet. It marks where the estimators for designs
in which units start treatment in different periods will live, so that the two-way
fixed-effects classes (:class:`cpdimpact.did.DiD`, :class:`cpdimpact.did.EventStudy`), which
warn :class:`~cpdimpact.errors.StaggeredTimingWarning` on such designs, can point here.

Why they are needed
-------------------
With staggered starts and effects that change with time since treatment or differ between
start cohorts, the TWFE coefficient is a weighted average of all 2x2 comparisons, including
"forbidden" ones that use already-treated units as controls, with weights that can be negative
(Goodman-Bacon 2021; de Chaisemartin & D'Haultfoeuille 2020). TWFE event-study coefficients
are contaminated by effects at other event times (Sun & Abraham 2021).

Planned contents
----------------
- Group-time average treatment effects ATT(g, t) with never-treated or not-yet-treated
  comparisons, outcome-regression / inverse-probability / doubly robust variants, and their
  aggregations (overall, by event time, by cohort, by calendar time) (Callaway & Sant'Anna
  2021), handling pupil-level repeated cross-sections within schools.
- Interaction-weighted event studies (Sun & Abraham 2021) and the imputation estimator
  (Borusyak, Jaravel & Spiess 2024) for comparison.
- Inference for few clusters: the wild cluster bootstrap (Rademacher and Webb weights) and CR2
  with Satterthwaite degrees of freedom (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018),
  seeded and parallelisable through a ``concurrent.futures.Executor``.

Reference values for CR1 and CR2 from R ``clubSandwich`` on the TWFE test cases are already
stored in ``tests/reference/did/`` for that work.
"""

__all__: list[str] = []
