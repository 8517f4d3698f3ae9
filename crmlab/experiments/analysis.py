"""Analysis of an SMS experiment: per-arm campaign metrics, tests, factorial effects, the decision.

A targeted customer **converts** when they place a paid order within ``window_hours`` after
their send time (inclusive). Rates are over targeted customers (intention to treat: an
undelivered message still counts in its arm); the holdout arm is sends-table rows with
their own variant and ``delivered = false``. Each messaged arm is compared with the holdout
customers on its own clock (a virtual send time at the arm's tested time: see
:mod:`crmlab.experiments.clocks`).

Tests (each equal to R where R has it; see tests/test_experiments*.py):

* two arms: pooled two-proportion z-test (z^2 = ``prop.test(correct=FALSE)`` X-squared;
  Yates' correction on request), the difference with Wald (prop.test's) and Newcomb
  hybrid-score 95% intervals, the relative lift with a log-ratio interval;
* k arms: chi-square test of independence (``chisq.test``); each arm against the control
  with Holm's correction;
* revenue per targeted customer: Welch's t-test (``t.test``) and a seeded bootstrap
  interval for the difference (drawn in chunks: memory O(n), not O(n_boot x n));
* CUPED on revenue and conversion with the customer's figures from the ``cuped_days``
  before the send (:mod:`crmlab.experiments.cuped`);
* copy x send time: effects and interaction on the additive scale, logit kept beside
  (:mod:`crmlab.experiments.factorial`);
* sample ratio mismatch: chi-square goodness of fit of arm sizes to the planned split;
* the decision (which copy, which send time, at what profit) from
  :mod:`crmlab.experiments.decision`; daily always-valid monitoring from
  :mod:`crmlab.experiments.monitoring`;
* **no verdict** when the data cannot carry the tests (nothing delivered, no holdout, sends
  outside the orders' observation, too few conversions for the normal approximation): the
  rule is in :func:`crmlab.experiments.preconditions.verdict_preconditions`.

The building blocks live in :mod:`crmlab.experiments.metrics`, the readout in
:mod:`crmlab.experiments.readout`; this module gathers them (and imports nothing back).
"""
from __future__ import annotations

from crmlab.experiments.breakdowns import aa_false_positive_rate, cumulative_conversions, segment_effects
from crmlab.experiments.factorial import factorial_effects
from crmlab.experiments.metrics import (DEFAULT_PRICE_PER_MESSAGE, Z975, _billed_segments, _boot_means,  # noqa: F401
                                        _default_control, _window_outcomes, arm_table, campaign_outcomes,
                                        compare_proportions, control_rows, holm, parse_split, srm_check,
                                        welch_revenue)
from crmlab.experiments.readout import ExperimentResult, analyse_experiment

__all__ = ["campaign_outcomes", "arm_table", "compare_proportions", "welch_revenue", "srm_check",
           "factorial_effects", "segment_effects", "analyse_experiment", "ExperimentResult", "parse_split",
           "cumulative_conversions", "aa_false_positive_rate", "control_rows", "holm"]
