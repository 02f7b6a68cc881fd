"""``glmha evaluate`` with a result identical to its target: PSNR inf reported, the per-image scores kept."""
import json
import os.path as osp
import shutil


def test_evaluate_a_result_identical_to_its_target(tmp_path, demo_data, capsys):
    """PSNR inf: the table says so, the per-image JSON is written (first), the plot draws it."""
    from glmha_plugin.evaluation.evaluate import main
    target = demo_data / 'datasets' / 'demo_rain' / 'test' / 'target' / 'chelsea.png'
    rain = demo_data / 'datasets' / 'demo_rain' / 'test' / 'input' / 'chelsea.png'
    (tmp_path / 'gt' / 'Rain100L' / 'target').mkdir(parents=True)
    (tmp_path / 'res' / 'Rain100L').mkdir(parents=True)
    for stem, result in (('same', target), ('other', rain)):
        shutil.copy(target, tmp_path / 'gt' / 'Rain100L' / 'target' / f'{stem}.png')
        shutil.copy(result, tmp_path / 'res' / 'Rain100L' / f'{stem}.png')
    assert main(['--task', 'Deraining', '--result_dir', str(tmp_path / 'res'), '--gt_dir', str(tmp_path / 'gt'),
                 '--dataset', 'Rain100L', '--workers', '1']) == 0
    out = capsys.readouterr().out
    assert 'For Rain100L dataset PSNR: inf' in out and '1 of 2 Rain100L results are identical' in out
    with open(tmp_path / 'res' / 'evaluation_Deraining.json', encoding='utf-8') as f:
        scores = json.load(f)
    assert scores['Rain100L']['images']['same'] == [float('inf'), 1.0]
    assert osp.getsize(tmp_path / 'res' / 'evaluation_Deraining.png') > 0
