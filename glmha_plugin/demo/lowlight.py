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


def make_lowlight_pairs(out_dir: str, train_short_side: int = 96, test_size=(60, 84), seed: int = 0,
                        train_photos=('astronaut', 'coffee', 'motorcycle_left'), test_photos=('chelsea',)) -> dict:
    """Write ``{out_dir}/{Train,Test}/{input,target}/<name>.png`` (the LOL layout of Retinexformer's option files).

    Targets are the colour photos scikit-image ships (as the demo's deraining set); inputs are
    :func:`noisy` :func:`darken` copies.  Test images are ``test_size`` (H, W).  Returns the folders written.
    """
    from .data import write_pairs
    rng = np.random.default_rng(seed)

    def degrade(img: np.ndarray) -> np.ndarray:
        return (noisy(darken(img.astype(np.float64) / 255.0), rng) * 255 + 0.5).astype(np.uint8)

    return write_pairs(out_dir, degrade, (('Train', train_photos), ('Test', test_photos)), train_short_side,
                       test_size)
