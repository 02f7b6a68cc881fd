"""How low-rank are a model's channel-attention maps? Spectra per level on real images, and ranks for GLMHA.

    .venv/bin/python tools/attention_spectrum.py                     # Restormer (random init) on the demo photos
    .venv/bin/python tools/attention_spectrum.py --host mst_l      # MST-L: photos -> 28-band scenes -> CASSI shots
    .venv/bin/python tools/attention_spectrum.py --opt options/Deraining_Restormer.yml \\
        --weights experiments/Deraining_Restormer/models/net_g_latest.pth --images datasets/Rain13K/test/input \\
        --write-options options/my_GLMHA_ranks.yml --energy 0.95

Hooks every CSA (and GLMHA) layer, Restormer's or the MS-MSA of MST / MST++, runs the images, and writes
spectrum.png (mean cumulative eigenvalue and singular-value distributions per
level, the GLMHA paper's Figure 1), spectrum.md and spectrum_ranks.csv (per
layer, the smallest rank keeping 90/95/99% of the singular-value energy).
``--write-options`` writes an option file whose ``network_g`` uses GLMHA with
those ranks: per stage for Restormer, one per U-Net level for MST / MST++.
The command is glmha_plugin.analysis.spectrum_report.main.
"""
import sys

from glmha_plugin.analysis.spectrum_report import main

if __name__ == '__main__':
    sys.exit(main())
