"""Measurement tools: complexity (params/MACs), speed and memory, attention spectra, equal-budget comparison.

Nothing here is needed to train or run a model.  Each ``tools/*.py`` analysis
script is a thin front end over the ``main(argv)`` of one module here:
``complexity_report`` (tools/complexity.py), ``benchmark_report``
(tools/benchmark.py), ``spectrum_report`` (tools/attention_spectrum.py),
``compare`` (tools/compare.py) and ``count_params`` (tools/count_params.py).
"""
