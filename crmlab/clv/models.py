"""Customer lifetime value (顾客终身价值), the time dimension: buy-till-you-die models.

The public names of :mod:`crmlab.clv` in one place (the import path notebooks and scripts
use); each lives in its own module:

* :mod:`crmlab.clv.base`: :class:`FittedModel` (the lifelines-style fitter base: ``fit``,
  ``params_``, ``summary``, ``log_likelihood_``), :class:`ClvFitError`, :data:`LABELS`;
* one module per model: :class:`~crmlab.clv.bgnbd.BetaGeoModel`,
  :class:`~crmlab.clv.pareto_nbd.ParetoNBDModel`, :class:`~crmlab.clv.mbgnbd.ModifiedBetaGeoModel`,
  :class:`~crmlab.clv.gamma_gamma.GammaGammaModel` (:func:`fit_gamma_gamma`);
* :mod:`crmlab.clv.fitting`: :func:`rfm_summary`, :func:`fit_clv_models`, :func:`choose_model`
  (Poisson deviance inside the ±10% band);
* :mod:`crmlab.clv.values`: :func:`customer_value`, :func:`value_deciles`,
  :func:`p_alive_matrix`, :func:`wakeup_candidates`;
* :mod:`crmlab.clv.holdout`: :func:`holdout_comparison`, :func:`period_transactions`;
* :mod:`crmlab.clv.backtest`: rolling-origin backtests and the intervals incl. model error
  (:func:`backtest_errors`, :func:`model_error_interval`);
* :mod:`crmlab.clv.predictive`: each customer's predictive distribution of value
  (:func:`value_distribution`);
* :mod:`crmlab.clv.checks`: the fit checks (:func:`spend_frequency_check`, :func:`misfit`,
  :func:`no_dropout_evidence`);
* :mod:`crmlab.clv.pipeline`: :func:`clv_pipeline` -> :class:`ClvResult`, the one pipeline
  that ``crmlab clv`` and notebook 04 run.

The math is in :mod:`crmlab.clv.likelihoods` (vectorised log-likelihoods with analytic
gradients, equal to lifetimes' own) and :mod:`crmlab.clv.expectations`.
"""
from __future__ import annotations

from crmlab.clv.backtest import backtest_errors, backtest_origins, model_error_interval
from crmlab.clv.base import LABELS, MODELS, ClvFitError, FittedModel, fit_nbd
from crmlab.clv.bgnbd import BetaGeoModel
from crmlab.clv.checks import misfit, no_dropout_evidence, spend_frequency_check
from crmlab.clv.fitting import choose_model, fit_clv_models, frequency_monetary_correlation, rfm_summary
from crmlab.clv.gamma_gamma import GammaGammaModel, fit_gamma_gamma
from crmlab.clv.holdout import holdout_comparison, period_transactions
from crmlab.clv.mbgnbd import ModifiedBetaGeoModel
from crmlab.clv.pareto_nbd import ParetoNBDModel
from crmlab.clv.pipeline import ClvResult, clv_pipeline
from crmlab.clv.predictive import value_distribution
from crmlab.clv.values import customer_value, p_alive_matrix, value_deciles, wakeup_candidates

__all__ = ["ClvFitError", "FittedModel", "BetaGeoModel", "ParetoNBDModel", "ModifiedBetaGeoModel", "GammaGammaModel",
           "rfm_summary", "fit_clv_models", "fit_gamma_gamma", "fit_nbd", "choose_model",
           "frequency_monetary_correlation", "value_deciles", "p_alive_matrix", "wakeup_candidates", "MODELS",
           "LABELS", "holdout_comparison", "customer_value", "clv_pipeline", "ClvResult", "period_transactions",
           "backtest_errors", "backtest_origins", "model_error_interval", "value_distribution", "misfit",
           "no_dropout_evidence", "spend_frequency_check"]
