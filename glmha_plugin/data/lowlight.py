"""Synthetic low-light images: photos darkened like an under-exposed shot, for demos, tests and analysis tools.

``darken(img) = gain * img ** gamma`` (img in [0, 1], numpy array or torch
tensor, any shape): a global exposure cut (``gain``) with a gamma that
darkens the shadows more than the highlights, which is roughly how LOL's
low-light shots relate to their normal-light pairs.  :func:`noisy` adds the
sensor noise that dominates real low-light images.  Not a camera model.
"""
import numpy as np

GAIN = 0.15
GAMMA = 1.6
NOISE_SIGMA = 0.01


def darken(img, gain: float = GAIN, gamma: float = GAMMA):
    """``gain * img ** gamma`` for img in [0, 1] (numpy array or torch tensor); same type and shape."""
    return gain * img ** gamma


def noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = NOISE_SIGMA) -> np.ndarray:
    """img + Gaussian noise of standard deviation ``sigma``, clipped to [0, 1]."""
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0.0, 1.0)
