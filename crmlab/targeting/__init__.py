"""Whom to message: uplift targeting from past randomised campaigns (issue 27).

:mod:`~crmlab.targeting.features` (the pre-send snapshot), :mod:`~crmlab.targeting.learners`
(T-, X- and DR-learners, segment fallback), :mod:`~crmlab.targeting.evaluation` (Qini, uplift@k),
:mod:`~crmlab.targeting.policy` (cost-aware arm per customer, budget curve) and
:mod:`~crmlab.targeting.pipeline` (:func:`~crmlab.targeting.pipeline.target`, the one entry point).
The package imports none of them.
"""
