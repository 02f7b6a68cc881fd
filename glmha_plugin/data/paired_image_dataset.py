"""``Dataset_PairedImage``: Restormer's paired dataset for basicsr 1.4.2's ``DATASET_REGISTRY``.

Registered under Restormer's own name, so ``type: Dataset_PairedImage`` in an
upstream Restormer YAML keeps working.  Options::

    dataroot_gt: datasets/Deraining/train/Rain13K/target   # folder, or an .lmdb made by glmha prepare-lmdb
    dataroot_lq: datasets/Deraining/train/Rain13K/input
    io_backend: {type: disk}        # or {type: lmdb}
    filename_tmpl: '{}'             # input stem from the target stem (disk)
    gt_size: 384                    # train: reflect-pad to at least this, then paired random crop
    geometric_augs: true            # train: one of the 8 flip/rot90 variants, same for both images

Items: ``{'lq': C x h x w, 'gt': C x H x W}`` float32 RGB in [0, 1] (basicsr's
``img2tensor``), plus ``lq_path``/``gt_path``.  Train items are ``gt_size``
crops; val/test items are whole images (checked to have matching sizes).
"""
import numpy as np
from basicsr.data.transforms import paired_random_crop
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from .pairing import paired_paths
from .transforms import pad_to_size, random_dihedral


@DATASET_REGISTRY.register()
class Dataset_PairedImage(data.Dataset):  # noqa: N801 (Restormer's name)
    """Paired (input, target) images in Restormer's layout; see the module docstring."""

    # Keys of this dataset's option block (checked by glmha_plugin.glue.preflight); the progressive-learning
    # keys are read by ImageCleanModel from the train dataset's block, as in Restormer.
    option_keys = frozenset({'dataroot_gt', 'dataroot_lq', 'filename_tmpl', 'io_backend', 'gt_size', 'geometric_augs',
                             'mini_batch_sizes', 'iters', 'gt_sizes'})
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
        self.paths = paired_paths(opt['dataroot_lq'], opt['dataroot_gt'], self.backend, opt.get('filename_tmpl', '{}'))
        if self.backend == 'lmdb':
            self.io_backend_opt.update(db_paths=[opt['dataroot_lq'], opt['dataroot_gt']], client_keys=['lq', 'gt'])
        if self.is_train:
            if opt.get('gt_size') is None:
                raise ValueError(f'train dataset {opt.get("name")!r}: set gt_size (the training patch size)')
            self.gt_size = int(opt['gt_size'])
            self.geometric_augs = bool(opt.get('geometric_augs', False))

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
