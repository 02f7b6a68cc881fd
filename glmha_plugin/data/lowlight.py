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
    import os
    import os.path as osp

    import cv2

    from ..demo import _photo, _resize_short_side
    rng = np.random.default_rng(seed)
    folders = {}
    for split, names in (('Train', train_photos), ('Test', test_photos)):
        for kind in ('input', 'target'):
            folders[f'{split}_{kind}'] = osp.join(out_dir, split, kind)
            os.makedirs(folders[f'{split}_{kind}'], exist_ok=True)
        for name in names:
            img = _photo(name)
            if split == 'Train':
                img = _resize_short_side(img, train_short_side)
            else:
                img = _resize_short_side(img, max(test_size))[:test_size[0], :test_size[1]]
            dark = noisy(darken(img.astype(np.float64) / 255.0), rng)
            cv2.imwrite(osp.join(folders[f'{split}_target'], f'{name}.png'), img[..., ::-1])
            cv2.imwrite(osp.join(folders[f'{split}_input'], f'{name}.png'),
                        (dark * 255 + 0.5).astype(np.uint8)[..., ::-1])
    return folders
