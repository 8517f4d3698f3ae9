"""Customer lifetime value: buy-till-you-die models (one module each, on a lifelines-style
fitter base), their likelihoods and expectations, and the pipeline; the public names are in
:mod:`crmlab.clv.models`."""
