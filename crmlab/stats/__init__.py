"""Statistics with no crmlab imports above them: proportions and their Wilson intervals
(:mod:`~crmlab.stats.proportion`), the Kaplan–Meier estimator (:mod:`~crmlab.stats.survival`)
and equivalence tests for rates (:mod:`~crmlab.stats.equivalence`)."""
