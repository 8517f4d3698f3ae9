"""The API's models: CLV, experiments, sample size and promotions.

Re-exported by :mod:`crmlab.api` (and ``crmlab.NAME``); each function documents and calls
the implementation named first under "See Also".
"""
from __future__ import annotations

from crmlab.clv import models as _models
from crmlab.clv import pipeline as _pipeline
from crmlab.experiments import analysis as _analysis
from crmlab.experiments import design as _design
from crmlab.promotion import plan as _plan

__all__ = ['rfm_summary', 'fit_clv', 'analyse_experiment', 'sample_size', 'promotion_review']


def rfm_summary(orders, observation_end=None, time_unit: str = "D", calibration_end=None, engine=None):
    """lifetimes' RFM summary per customer (``frequency``, ``recency``, ``T``, ``monetary_value``),
    computed in the engine: what the buy-till-you-die models are fitted on.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    observation_end : optional
    time_unit : {"D", "W"}
        Days, or weeks.
    calibration_end : optional
        Split into calibration (``_cal``) and holdout (``_holdout``) columns.
    engine : optional

    Returns
    -------
    DataFrame
        Per customer, equal to ``lifetimes.utils.summary_data_from_transaction_data``
        (and ``calibration_and_holdout_data``).

    See Also
    --------
    crmlab.clv.models.rfm_summary : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> summary = crmlab.rfm_summary(orders, time_unit="W")
    >>> len(summary), int((summary["frequency"] > 0).sum())
    (1940, 907)
    >>> from crmlab.clv.models import FittedModel
    >>> FittedModel("bgnbd").fit(summary)
    <FittedModel BG/NBD: fitted on 1,940 customers (1,427 distinct rows); r 0.2577, alpha 2.971, a 12.73, b 49.18; log-likelihood -10,570.08, ok>
    """
    return _models.rfm_summary(orders, observation_end, time_unit, calibration_end, engine)


def fit_clv(orders, *, time_unit: str = "W", observation_end=None, calibration_end=None, holdout_days: int = 182,
            model: str | None = None, horizon_months: int = 12, discount_rate: float = 0.01, margin: float = 1.0,
            engine=None, interval_level: float = 0.9, purchases_days: int = 90, seed: int = 0, band: float = 0.10):
    """Customer lifetime value (顾客终身价值): fit BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma,
    compare them on a holdout, choose, and value every customer, with intervals.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    time_unit : {"W", "D"}
    calibration_end : optional
        Fit up to this day and compare predictions after it; default ``holdout_days``
        (182) before the observation end; 0 or None: no holdout.
    model : {"bgnbd", "pareto_nbd", "mbgnbd"}, optional
        Fit and use only this purchase model.
    horizon_months, discount_rate, margin
        CLV over ``horizon_months``, discounted monthly; revenue at margin 1, else profit.
    observation_end, engine, interval_level, purchases_days, seed, band
        See :func:`crmlab.clv.pipeline.clv_pipeline`.

    Returns
    -------
    ClvResult
        ``headline()``, ``model`` (the chosen :class:`~crmlab.clv.models.FittedModel`:
        ``summary``, ``print_summary()``), ``models``, ``gamma_gamma``, ``holdout``,
        ``values`` (per customer: P(alive), expected purchases, expected CLV with an interval
        of that expectation, and the predictive distribution of the customer's value:
        ``p_no_purchase``, ``value_median``, ``value_p90``); ``clv`` (the total with a
        prediction interval incl. model error from rolling-origin backtests, named in the
        headline; ``misfit`` first in the headline when the model does not fit),
        ``plot(ax=None)``.

    Raises
    ------
    ClvFitError
        No purchase model can be fitted (no repeat customers, ...).

    See Also
    --------
    crmlab.clv.pipeline.clv_pipeline : the implementation (``crmlab clv``, notebook 04).

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> clv = crmlab.fit_clv(orders)
    >>> print(clv.headline())
    Pareto/NBD does not fit this store (the period-transactions test rejects it, p < 0.001): treat the value as
    rough. Expected 12-month revenue of today's 1,940 customers: ¥174,047 (90% prediction interval incl. model
    error from 4 backtests: ¥129,009–¥234,808), at margin 1.
    >>> clv.chosen_model
    'pareto_nbd'
    >>> clv.model.params_.round(2).to_dict()
    {'r': 0.92, 'alpha': 13.15, 's': 0.57, 'beta': 7.97}
    >>> list(clv.model.summary.columns)
    ['estimate', 'std_error', 'ci_low', 'ci_high']
    """
    return _pipeline.clv_pipeline(orders, time_unit=time_unit, observation_end=observation_end, calibration_end=calibration_end,
             holdout_days=holdout_days, model=model, horizon_months=horizon_months, discount_rate=discount_rate,
             margin=margin, engine=engine, interval_level=interval_level, purchases_days=purchases_days, seed=seed,
             band=band)


def analyse_experiment(sends, orders, window_hours: float = 72, control: str | None = None, **options):
    """Read out an SMS experiment (copy × send time against a holdout): conversion and revenue
    per arm, tests with intervals, the factorial effects, CUPED, and the decision.

    A targeted customer converts with a paid order within ``window_hours`` of the send.

    Parameters
    ----------
    sends : DataFrame
        From :func:`load_sends`.
    orders : OrderTable or DataFrame
    window_hours : float
    control : str, optional
        The control arm (default: the holdout).
    **options
        ``planned_split``, ``planned_n_per_arm``, ``alpha``, ``campaign``, ``price_per_message``,
        ``margin``, ``cuped_days``, ``monitor``, ``target_effect``, ... (see the implementation).

    Returns
    -------
    ExperimentResult
        ``decision``, ``verdict``, ``arms``, ``comparisons``, ``factorial``, ``srm``,
        ``warnings``.

    See Also
    --------
    crmlab.experiments.analysis.analyse_experiment : the implementation (``crmlab abtest``,
        notebook 05).
    sample_size : customers per arm for the next test.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> sends, sends_ledger = crmlab.load_sends("sends.csv")
    >>> result = crmlab.analyse_experiment(sends, orders)
    >>> result.decision["headline"]
    'no verdict'
    >>> result.arms["buyers"].to_dict()
    {'A@10:00': 10, 'A@17:00': 16, 'B@10:00': 11, 'B@17:00': 18, 'holdout': 1}
    """
    return _analysis.analyse_experiment(sends, orders, window_hours, control=control, **options)


def sample_size(baseline: float, target: float | None = None, relative_lift: float | None = None,
                alpha: float = 0.05, power: float = 0.8, **options):
    """Customers per arm to detect a change in conversion from ``baseline`` to ``target``
    (R's ``power.prop.test``).

    Parameters
    ----------
    baseline : float
        The control's conversion, e.g. 0.10.
    target, relative_lift : float
        Give one: the conversion to detect (0.12) or the relative lift (0.2 for +20%).
    alpha, power : float
    **options
        ``ratio`` (n2 / n1, default 1), ``alternative`` (``"two-sided"``).

    Returns
    -------
    SampleSize
        ``n_per_arm`` (rounded up), ``n_exact``, ...

    See Also
    --------
    crmlab.experiments.design.sample_size : the implementation and the formula.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.sample_size(0.10, 0.12).n_per_arm
    3841
    >>> crmlab.sample_size(0.10, relative_lift=0.5).n_per_arm
    686
    """
    return _design.sample_size(baseline, target, relative_lift, alpha, power, **options)


def promotion_review(orders, date=None, last_year_date=None, phases=None, growth=None, observation_end=None,
                     engine=None, clv_check: bool = True, today=None):
    """A big promotion (大促: Double 11, 618, a brand day): last year's and this year's figures
    per phase and new/old customer, this year's plan, and the review once the day has passed.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    date, last_year_date : str or Timestamp, optional
        The promotion day (default: 11-11 of the export's year) and last year's.
    phases : str, optional
        ``"build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3"`` (the default).
    growth : str or dict, optional
        ``"new=0.1,old=0.2"``; a type not given is estimated from windows the export fully
        covers; when it does not, there is no plan (``plan`` None, ``plan_reason`` says why).
    observation_end, engine, clv_check, today
        See :func:`crmlab.promotion.plan.analyse_promotion`.

    Returns
    -------
    PromotionResult
        ``this_year``, ``last_year``, ``plan``, ``review`` (attainment with its interval),
        ``intervals``, ``assumptions``, ``plot(ax=None)``.

    See Also
    --------
    crmlab.promotion.plan.analyse_promotion : the implementation (``crmlab promotion``, notebook 06).

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> review = crmlab.promotion_review(orders, date="2025-11-11", clv_check=False)
    >>> print(review.headline())
    2025-11-11 reviewed: day sales ¥6,305; whole period ¥77,046 (no targets: growth not given)
    >>> review.growth_source
    {'new': 'not covered', 'old': 'not covered'}
    >>> review = crmlab.promotion_review(orders, date="2025-11-11", growth="new=0.25,old=0.1", clv_check=False)
    >>> print(review.headline())
    2025-11-11 reviewed: day sales ¥6,305, 143% of the target ¥4,419 (90% interval 94%–217%);
    whole period ¥77,046, 132% of target (90% interval 109%–160%)
    """
    return _plan.analyse_promotion(orders, date, last_year_date, phases, growth, observation_end, engine, clv_check, today)
