"""Every file of a dataset checked from its header, fast, before training: what the first sample cannot show.

A dataset is read lazily, one sample at a time, so a half-written image late
in a folder, one pair whose sizes disagree, a cube with another band count or
an RGB image smaller than its cube surfaces as a traceback hours into a run.
:func:`check_dataset_files` reads each file's header only (no decoding):

* PNG: signature, ``IHDR`` (size, colour type) and the closing ``IEND`` chunk
  at the end of the file (a file cut short has none; a file with data
  appended after it is searched for it);
* JPEG: the frame header (``SOF``: size, components) and an end-of-image
  marker after the scan data (in the last 4 KiB, else searched for);
* BMP: size from the header, file at least as long as its header says;
* other image formats (TIFF, WebP, ...): decoded with OpenCV (slower);
* ``.mat``: variable shape and class from the header (scipy.io.whosmat for
  v5/v7 files, whose element sizes must add up to the file length; h5py for
  v7.3 / HDF5 files, which records its own length).

and then what the dataset will combine: input and target of a pair have the
same size (times ``scale``), a training crop fits (basicsr's
``PairedImageDataset``), every cube has the band count the network expects,
each RGB image has its cube's size, integer cubes are divided by a
``data_range`` that brings them to [0, 1].  :class:`DataFileError` (one line)
reports how many files are bad and names the first ones.
"""
import os
import os.path as osp
import struct
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

SHOW = 3                      # bad files named in the message
PROGRESS_FROM = 2000          # files; a progress bar from this many on
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
INTEGER_CLASSES = {'uint8': 255, 'uint16': 65535, 'uint32': 2 ** 32 - 1, 'int8': 127, 'int16': 32767,
                   'int32': 2 ** 31 - 1}


class DataFileError(ValueError):
    """A dataset file that cannot work; the message is one line."""


class BadFile(ValueError):
    """One unreadable / incomplete file (the reason)."""


@dataclass(frozen=True)
class ImageHeader:
    width: int
    height: int
    channels: int


# ----------------------------------------------------------------------------------------------- images


def _png(f, size: int) -> ImageHeader:
    head = f.read(33)
    if len(head) < 33 or head[12:16] != b'IHDR':
        raise BadFile('is not a valid PNG (no IHDR header chunk)')
    width, height, _, colour = struct.unpack('>IIBB', head[16:26])
    if size < 33 + len(PNG_END):
        raise BadFile('is cut short (no PNG end chunk)')
    f.seek(size - len(PNG_END))
    if f.read(len(PNG_END)) != PNG_END and not _found_after(f, 33, PNG_END[4:8]):   # data appended after IEND
        raise BadFile('is cut short (no PNG end chunk): the file is incomplete')
    return ImageHeader(width, height, PNG_CHANNELS.get(colour, 3))


def _found_after(f, start: int, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Whether ``needle`` occurs in the file from ``start`` on (read in chunks; the slow path for files with
    data appended after their end marker, e.g. a phone's motion-photo video after a JPEG)."""
    f.seek(start)
    tail = b''
    while True:
        block = f.read(chunk)
        if not block:
            return False
        if needle in tail + block:
            return True
        tail = block[-(len(needle) - 1):]


def _jpeg(f, size: int) -> ImageHeader:
    f.seek(2)
    found = None
    while True:
        byte = f.read(1)
        while byte == b'\xff':          # fill bytes before a marker
            byte = f.read(1)
        if not byte:
            raise BadFile('is cut short (JPEG without its scan data)')
        marker = byte[0]
        if marker in (0x01, *range(0xD0, 0xD8)):   # markers without a length
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            raise BadFile('is cut short (JPEG header)')
        length = struct.unpack('>H', length_bytes)[0]
        start = f.tell()
        if marker in JPEG_FRAMES:
            _, height, width, components = struct.unpack('>BHHB', f.read(6))
            found = ImageHeader(width, height, components)
        if marker == 0xDA:              # start of scan: the entropy-coded data follows
            if found is None:
                raise BadFile('is not a valid JPEG (no frame header)')
            scan = start + length - 2
            break
        f.seek(start + length - 2)
    f.seek(max(scan, size - 4096))
    if b'\xff\xd9' not in f.read() and not _found_after(f, scan, b'\xff\xd9'):
        raise BadFile('is cut short (no JPEG end-of-image marker): the file is incomplete')
    return found


def _bmp(f, size: int) -> ImageHeader:
    head = f.read(30)
    if len(head) < 30:
        raise BadFile('is cut short (BMP header)')
    declared, = struct.unpack('<I', head[2:6])
    width, height = struct.unpack('<ii', head[18:26])
    bits, = struct.unpack('<H', head[28:30])
    if declared and size < declared:
        raise BadFile(f'is cut short ({size} of the {declared} bytes its header declares)')
    return ImageHeader(width, abs(height), 1 if bits <= 8 else 4 if bits == 32 else 3)


def _decoded(path: str) -> ImageHeader:
    import cv2
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BadFile('cannot be decoded (OpenCV)')
    return ImageHeader(img.shape[1], img.shape[0], 1 if img.ndim == 2 else img.shape[2])


def image_header(path: str) -> ImageHeader:
    """Size and channels of an image from its header (module docstring); BadFile when it is bad."""
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            magic = f.read(8)
            f.seek(0)
            if size == 0:
                raise BadFile('is empty')
            if magic == PNG_SIGNATURE:
                return _png(f, size)
            if magic[:2] == b'\xff\xd8':
                return _jpeg(f, size)
            if magic[:2] == b'BM':
                return _bmp(f, size)
    except struct.error:
        raise BadFile('is cut short (header)') from None
    except OSError as exc:
        raise BadFile(f'cannot be read ({exc.strerror or exc})') from None
    return _decoded(path)


# ----------------------------------------------------------------------------------------------- .mat files


def _v5_intact(path: str, size: int) -> None:
    """The data elements of a v5/v7 MAT file (after its 128-byte header) must end exactly at the file's end."""
    with open(path, 'rb') as f:
        f.seek(126)
        endian = '<' if f.read(2) == b'IM' else '>'
        pos = 128
        while pos < size:
            f.seek(pos)
            tag = f.read(8)
            if len(tag) < 8:
                raise BadFile('is cut short (MAT element header)')
            kind, nbytes = struct.unpack(endian + 'II', tag)
            if kind >> 16:             # small data element: 4-byte tag and data
                pos += 8
                continue
            pos += 8 + nbytes + (0 if kind == 15 else (-nbytes) % 8)   # 15: compressed, unpadded
        if pos > size:
            raise BadFile(f'is cut short ({size} bytes, its elements need {pos}): the file is incomplete')


def mat_header(path: str, keys) -> Tuple[Tuple[int, ...], str, str]:
    """``(shape in MATLAB orientation, variable, class)`` of the first of ``keys`` (class: MATLAB's, e.g.
    'double', 'single', 'uint16'); BadFile when the file is unreadable or cut short."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            magic = f.read(8)
        if magic == b'\x89HDF\r\n\x1a\n' or size > 512 and _hdf5_at_512(path):
            import h5py
            with h5py.File(path, 'r') as h:
                key = next((k for k in keys if k in h), None)
                if key is None:
                    raise BadFile(f'has none of the variables {keys} (it has {sorted(h.keys())})')
                data = h[key]
                cls = data.attrs.get('MATLAB_class', data.dtype.name)
                cls = cls.decode() if isinstance(cls, bytes) else str(cls)
                return tuple(reversed(data.shape)), key, cls
        import scipy.io
        found = {name: (shape, cls) for name, shape, cls in scipy.io.whosmat(path)}
        key = next((k for k in keys if k in found), None)
        if key is None:
            raise BadFile(f'has none of the variables {keys} (it has {sorted(found)})')
        _v5_intact(path, size)
        return tuple(found[key][0]), key, found[key][1]
    except BadFile:
        raise
    except Exception as exc:  # noqa: BLE001  h5py / scipy on a broken file: OSError, ValueError, TypeError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if 'truncated file' in first:   # HDF5 records its length: the file is shorter
            raise BadFile(f'is cut short ({first[first.index("truncated file"):][:100]})') from None
        raise BadFile(f'is not a readable MAT file ({first[:120]})') from None


def _hdf5_at_512(path: str) -> bool:
    with open(path, 'rb') as f:   # MATLAB v7.3 files start with a 512-byte user block
        f.seek(512)
        return f.read(8) == b'\x89HDF\r\n\x1a\n'


# ----------------------------------------------------------------------------------------------- datasets


class _Problems:
    """Bad files collected over a dataset: count and the first few."""

    def __init__(self, where: str):
        self.where, self.items, self.count, self.checked = where, [], 0, 0

    def add(self, text: str):
        self.count += 1
        if len(self.items) < SHOW:
            self.items.append(text)

    def raise_if_any(self, fix: str):
        if self.count:
            more = f' (and {self.count - SHOW} more)' if self.count > SHOW else ''
            found = 'a problem' if self.count == 1 else f'{self.count} problems'
            raise DataFileError(f'{self.where}: {found} in {self.checked} files: {"; ".join(self.items)}{more}; '
                                f'{fix}')


def _progress(items: Sequence, desc: str, unit: str = 'file') -> Iterable:
    if len(items) < PROGRESS_FROM:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit=unit, leave=False)


def _header(path: str, problems: _Problems) -> Optional[ImageHeader]:
    problems.checked += 1
    try:
        return image_header(path)
    except BadFile as exc:
        problems.add(f'{path} {exc}')
        return None


def _pairs(dataset, opt: dict, problems: _Problems, scale: int) -> None:
    crop = opt.get('gt_size') if opt.get('phase') == 'train' and type(dataset).__name__ == 'PairedImageDataset' \
        else None   # basicsr's dataset crops without padding; Dataset_PairedImage pads small images
    for pair in _progress(dataset.paths, f'checking {problems.where}', 'pair'):
        lq, gt = _header(pair['lq_path'], problems), _header(pair['gt_path'], problems)
        if lq is None or gt is None:
            continue
        if (gt.width, gt.height) != (lq.width * scale, lq.height * scale):
            problems.add(f'target {pair["gt_path"]} is {gt.width}x{gt.height} but its input {pair["lq_path"]} is '
                         f'{lq.width}x{lq.height}' + (f' (scale {scale})' if scale != 1 else ''))
        elif crop and min(gt.width, gt.height) < crop:
            problems.add(f'{pair["gt_path"]} ({gt.width}x{gt.height}) is smaller than gt_size {crop}')


def _singles(dataset, problems: _Problems) -> None:
    for path in _progress(dataset.paths, f'checking {problems.where}'):
        _header(path, problems)


def _mat(path: str, keys, problems: _Problems):
    problems.checked += 1
    try:
        return mat_header(path, keys)
    except BadFile as exc:
        problems.add(f'{path} {exc}')
        return None


def _bands(path: str, shape, bands: Optional[int], problems: _Problems, what: str) -> None:
    if bands is not None and (len(shape) != 3 or shape[2] != bands):
        got = f'{shape[2]} bands' if len(shape) == 3 else f'shape {shape}'
        problems.add(f'{path} has {got} but {what} expects {bands}')


def _arad(dataset, problems: _Problems, bands: Optional[int], what: str) -> None:
    from .arad_dataset import CUBE_KEY
    specs = dataset.spec_paths or [None] * len(dataset.rgb_paths)
    pairs = list(zip(dataset.rgb_paths, specs, strict=True))
    for rgb_path, spec_path in _progress(pairs, f'checking {problems.where}', 'scene'):
        rgb = _header(rgb_path, problems)
        if spec_path is None:
            continue
        found = _mat(spec_path, CUBE_KEY, problems)
        if found is None:
            continue
        shape = found[0]
        _bands(spec_path, shape, bands, problems, what)
        if rgb is not None and (rgb.height, rgb.width) != tuple(shape[:2]):
            smaller = 'smaller than' if rgb.height <= shape[0] and rgb.width <= shape[1] else 'not the size of'
            problems.add(f'{rgb_path} ({rgb.height} x {rgb.width}) is {smaller} its cube {spec_path} '
                         f'({shape[0]} x {shape[1]})')


def _cassi(dataset, problems: _Problems, bands: Optional[int], what: str) -> List[Tuple[str, str]]:
    """Check the scenes; returns (path, MATLAB class) of each readable one (for the data_range check)."""
    classes = []
    for path in _progress(dataset.paths, f'checking {problems.where}', 'scene'):
        found = _mat(path, dataset.keys, problems)
        if found is None:
            continue
        shape, _, cls = found
        _bands(path, shape, bands, problems, what)
        classes.append((path, cls))
    return classes


def check_data_range(classes: List[Tuple[str, str]], data_range: float, where: str) -> None:
    """Integer cubes need a data_range that brings them to [0, 1]; one data_range cannot fit two classes."""
    kinds = {}
    for path, cls in classes:
        kinds.setdefault(cls, path)
    if len(kinds) > 1:
        shown = ', '.join(f'{cls} ({osp.basename(p)})' for cls, p in kinds.items())
        raise DataFileError(f'{where}: the scenes are stored as different types ({shown}), but one data_range '
                            f'divides them all; convert them to one type')
    for cls, path in kinds.items():
        top = INTEGER_CLASSES.get(cls)
        if top is not None and data_range < top / 2:
            raise DataFileError(f'{where}: the scenes are {cls} (values up to {top}, e.g. {osp.basename(path)}) but '
                                f'data_range is {data_range:g}, so the network would see values up to '
                                f'{top / data_range:g} instead of [0, 1]; set data_range to the full scale of the data '
                                f'(65536 for cave_1024_28, as MST divides it)')


def check_dataset_files(dataset, opt: dict, where: str, scale: int = 1, bands: Optional[int] = None,
                        bands_from: str = 'network_g') -> int:
    """Check every file of ``dataset`` (built from the option block ``opt``) from its header (module docstring).

    ``bands``: the channel count the network expects of the cubes (ARAD-1K targets, CASSI scenes).  Raises
    DataFileError; returns the number of files checked (0 for a layout it does not know, e.g. LMDB).
    """
    from .arad_dataset import ARAD1KDataset
    from .cassi_dataset import CASSIDataset
    problems = _Problems(where)
    fix = 'replace or remove these files' + ('' if isinstance(dataset, CASSIDataset) else ' (and their partners)')
    if isinstance(dataset, ARAD1KDataset):
        _arad(dataset, problems, bands, bands_from)
    elif isinstance(dataset, CASSIDataset):
        classes = _cassi(dataset, problems, bands, bands_from)
        problems.raise_if_any(fix)
        check_data_range(classes, dataset.data_range, where)
    else:
        paths = getattr(dataset, 'paths', None)
        backend = (opt.get('io_backend') or {}).get('type', 'disk')
        if not paths or backend != 'disk':
            return 0
        if isinstance(paths[0], dict) and {'lq_path', 'gt_path'} <= set(paths[0]):
            _pairs(dataset, opt, problems, scale)
        elif isinstance(paths[0], str):
            _singles(dataset, problems)
    problems.raise_if_any(fix)
    return problems.checked

