"""Measurement tools: complexity (params/MACs), speed and memory, attention spectra, equal-budget comparison.

Nothing here is needed to train or run a model; the ``tools/*.py`` scripts are
thin command-line front ends over these modules.
"""
