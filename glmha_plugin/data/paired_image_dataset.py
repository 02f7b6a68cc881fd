"""``Dataset_PairedImage``: Restormer's paired dataset for basicsr 1.4.2's ``DATASET_REGISTRY``.

Registered under Restormer's own name, so ``type: Dataset_PairedImage`` in an
upstream Restormer YAML keeps working.  Its options: :class:`PairedImageOptions`
(every key, type and default; ``docs/options.md`` lists them).

Items: ``{'lq': C x h x w, 'gt': C x H x W}`` float32 RGB in [0, 1] (basicsr's
``img2tensor``), plus ``lq_path``/``gt_path``.  Train items are ``gt_size``
crops; val/test items are whole images (checked to have matching sizes).
"""
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Optional

import numpy as np
from basicsr.data.transforms import paired_random_crop
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from .pairing import paired_paths
from .transforms import pad_to_size, random_dihedral


@dataclass(frozen=True)
class IOBackendOptions:
    """``io_backend``: how the images are read (basicsr's ``FileClient``); its other keys go to the backend."""
    unknown_keys: ClassVar[str] = 'pass'
    type: Annotated[Literal['disk', 'lmdb', 'memcached'], 'disk: image files in folders; lmdb: databases (glmha '
                    'prepare-lmdb makes them); memcached: basicsr\'s datasets only'] = 'disk'


@dataclass(frozen=True)
class PairedImageOptions:
    """``datasets.<phase>`` with ``type: Dataset_PairedImage``: Restormer's paired images, on disk or in LMDB."""
    dataroot_gt: Annotated[str, 'required', 'target images: a folder, or an .lmdb made by glmha prepare-lmdb'] = None
    dataroot_lq: Annotated[str, 'required', 'input images: a folder or an .lmdb, paired with the targets by '
                           'stem'] = None
    io_backend: Annotated[IOBackendOptions, 'required', '{type: disk} or {type: lmdb}'] = None
    filename_tmpl: Annotated[str, 'disk: the input stem from the target stem'] = '{}'
    gt_size: Annotated[Optional[int], '>= 1', 'train (required there): reflect-pad to at least this size, then a '
                       'random crop of this side'] = None
    geometric_augs: Annotated[bool, 'train: one of the 8 flips/rotations, the same for both images'] = False


@DATASET_REGISTRY.register()
class Dataset_PairedImage(data.Dataset):
    """Paired (input, target) images in Restormer's layout; see the module docstring."""

    # The keys of this dataset's block (glmha_plugin.glue.option_schema); the progressive-learning keys are
    # ImageCleanModel's, read from the train dataset's block as in Restormer (models/progressive.py).
    declared_options = {'': PairedImageOptions}
    # Pairs input and target by stem (extensions may differ) and names unpaired files itself, so
    # glmha_plugin.glue.preflight skips its check of basicsr's same-name pairing rule for this dataset.
    own_pairing = True

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.io_backend_opt = dict(opt['io_backend'])
        self.backend = self.io_backend_opt.pop('type')
        self.file_client = None
        self.scale = int(opt.get('scale', 1))
        self.is_train = opt['phase'] == 'train'
        self.paths = paired_paths(opt['dataroot_lq'], opt['dataroot_gt'], self.backend,
                                  opt.get('filename_tmpl', PairedImageOptions.filename_tmpl))
        if self.backend == 'lmdb':
            self.io_backend_opt.update(db_paths=[opt['dataroot_lq'], opt['dataroot_gt']], client_keys=['lq', 'gt'])
        if self.is_train:
            if opt.get('gt_size') is None:
                raise ValueError(f'train dataset {opt.get("name")!r}: set gt_size (the training patch size)')
            self.gt_size = int(opt['gt_size'])
            self.geometric_augs = bool(opt.get('geometric_augs', PairedImageOptions.geometric_augs))

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, path: str, client_key: str) -> np.ndarray:
        where = f'{self.opt[f"dataroot_{client_key}"]}' if self.backend == 'lmdb' else path
        try:
            content = self.file_client.get(path, client_key)
        except FileNotFoundError:
            raise FileNotFoundError(f'{"input" if client_key == "lq" else "target"} image {path!r} disappeared '
                                    f'after the dataset was listed') from None
        if content is None:
            raise KeyError(f'key {path!r} is listed in {where}/meta_info.txt but not stored in the database; '
                           f're-run glmha prepare-lmdb (it verifies and completes databases)')
        try:
            img = imfrombytes(content, float32=True)
        except AttributeError:  # cv2.imdecode returned None
            img = None
        if img is None:
            raise ValueError(f'cannot decode image {path!r}{" in " + where if self.backend == "lmdb" else ""}: '
                             f'the file is not an image or is corrupt; replace it or remove the pair')
        return img

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = FileClient(self.backend, **self.io_backend_opt)
        pair = self.paths[index % len(self.paths)]
        img_gt = self._read(pair['gt_path'], 'gt')
        img_lq = self._read(pair['lq_path'], 'lq')
        if self.is_train:
            img_gt = pad_to_size(img_gt, self.gt_size)
            img_lq = pad_to_size(img_lq, self.gt_size // self.scale)
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.gt_size, self.scale, pair['gt_path'])
            if self.geometric_augs:
                img_gt, img_lq = random_dihedral(img_gt, img_lq)
        else:
            (hg, wg), (hl, wl) = img_gt.shape[:2], img_lq.shape[:2]
            if (hg, wg) != (hl * self.scale, wl * self.scale):
                raise ValueError(f'target {pair["gt_path"]!r} is {hg}x{wg} but input {pair["lq_path"]!r} is '
                                 f'{hl}x{wl} (scale {self.scale}); the pair does not match')
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': pair['lq_path'], 'gt_path': pair['gt_path']}
