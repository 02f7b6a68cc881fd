"""Measurement tools: complexity (params/MACs), speed and memory, attention spectra, equal-budget comparison.

Nothing here is needed to train or run a model.  Each ``tools/*.py`` analysis
script is a thin front end over the ``main(argv)`` of one module here:
``complexity_report`` (glmha complexity), ``benchmark_report``
(glmha benchmark), ``spectrum_report`` (glmha spectrum),
``compare`` (glmha compare) and ``count_params`` (glmha complexity).
"""
