"""Every data file's header, read without decoding (glmha_plugin.data.file_check): sizes and channels, and files cut
short found as such."""
import cv2
import numpy as np
import pytest
import scipy.io

from helpers import spectral_data as sd


@pytest.mark.parametrize('ext', ['png', 'jpg', 'bmp'])
def test_image_headers_and_cut_files(tmp_path, ext):
    from glmha_plugin.data.file_check import BadFile, image_header
    img = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    path = str(tmp_path / f'a.{ext}')
    cv2.imwrite(path, img)
    header = image_header(path)
    assert (header.width, header.height, header.channels) == (40, 30, 3)
    content = open(path, 'rb').read()
    open(path, 'wb').write(content + bytes(range(256)) * 64)          # data appended after the end marker
    assert image_header(path) == header
    open(path, 'wb').write(content[:len(content) // 2])
    with pytest.raises(BadFile, match='cut short'):
        image_header(path)

def test_top_down_bmp_has_a_positive_height(tmp_path):
    """A BMP stored top-down declares a negative height; the image is as tall as its absolute value."""
    import struct

    from glmha_plugin.data.file_check import image_header
    path = tmp_path / 'a.bmp'
    cv2.imwrite(str(path), np.zeros((30, 40, 3), np.uint8))
    content = bytearray(path.read_bytes())
    content[22:26] = struct.pack('<i', -30)
    path.write_bytes(bytes(content))
    header = image_header(str(path))
    assert (header.width, header.height, header.channels) == (40, 30, 3)

def test_mat_headers_and_cut_files(tmp_path):
    from glmha_plugin.data.file_check import BadFile, mat_header
    cube = np.random.default_rng(0).random((6, 7, 5)).astype(np.float32)
    scipy.io.savemat(tmp_path / 'v5.mat', {'img': cube})
    scipy.io.savemat(tmp_path / 'v5z.mat', {'img': (cube * 65535).astype(np.uint16)}, do_compression=True)
    sd.write_v73(str(tmp_path / 'v73.mat'), 'img', cube)
    for name, cls in (('v5.mat', 'single'), ('v5z.mat', 'uint16'), ('v73.mat', 'single')):
        path = str(tmp_path / name)
        assert mat_header(path, ['img']) == ((6, 7, 5), 'img', cls)
        content = open(path, 'rb').read()
        open(path, 'wb').write(content[:-3])
        with pytest.raises(BadFile, match='cut short'):
            mat_header(path, ['img'])


def test_basicsr_paired_dataset_needs_targets_of_gt_size_or_more(tmp_path):
    """basicsr's PairedImageDataset crops gt_size without padding: a target of exactly gt_size is fine, a smaller
    one is named (Dataset_PairedImage pads small images instead)."""
    from basicsr.data.paired_image_dataset import PairedImageDataset

    from glmha_plugin.data.file_check import DataFileError, check_dataset_files
    for folder in ('gt', 'lq'):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / 'a.png'), np.zeros((16, 20, 3), np.uint8))
    opt = {'name': 't', 'phase': 'train', 'dataroot_gt': str(tmp_path / 'gt'), 'dataroot_lq': str(tmp_path / 'lq'),
           'io_backend': {'type': 'disk'}, 'filename_tmpl': '{}', 'gt_size': 16, 'scale': 1}
    assert check_dataset_files(PairedImageDataset(opt), opt, 'datasets.train') == 2
    for folder in ('gt', 'lq'):
        cv2.imwrite(str(tmp_path / folder / 'b.png'), np.zeros((12, 20, 3), np.uint8))
    with pytest.raises(DataFileError, match=r'b\.png \(20x12\) is smaller than gt_size 16'):
        check_dataset_files(PairedImageDataset(opt), opt, 'datasets.train')
