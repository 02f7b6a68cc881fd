"""glmha compare: equal-budget CSA vs GLMHA runs through the real train/test pipelines."""
import csv
import os.path as osp
import statistics

import pytest
import torch

from glmha_plugin.analysis import compare

from helpers.common import TINY_TRAIN, load_yaml


def _runs():
    mk = lambda v, s, p, q: compare.Run(v, s, p, q, 100 if v == 'CSA' else 80, 1.0, '')  # noqa: E731
    return [mk('CSA', 0, 20.0, 0.50), mk('GLMHA r=0.5', 0, 19.5, 0.48),
            mk('CSA', 1, 21.0, 0.60), mk('GLMHA r=0.5', 1, 21.1, 0.61),
            mk('CSA', 2, 22.0, 0.55), mk('GLMHA r=0.5', 2, 21.6, 0.50)]


def test_summary_is_mean_sd_and_paired_difference():
    md = compare.summary_markdown(_runs())
    csa = '| CSA | 100 | 1.000 | 21.00 ± 1.00 | 0.5500 ± 0.0500 | - | - | 0, 1, 2 |'
    assert csa in md
    diffs = [19.5 - 20.0, 21.1 - 21.0, 21.6 - 22.0]
    dp = f'{statistics.fmean(diffs):+.2f} ± {statistics.stdev(diffs):.2f}'
    glmha_row = next(line for line in md.splitlines() if line.startswith('| GLMHA r=0.5 | 80 |'))
    assert f'20.73 ± {statistics.stdev([19.5, 21.1, 21.6]):.2f}' in glmha_row and dp in glmha_row


def test_options_carry_the_budget_and_the_variant():
    template = load_yaml(TINY_TRAIN)
    variants = compare.variants([0.25, 0.5], ['calibration', 'none'])
    assert list(variants) == ['CSA', 'GLMHA r=0.25', 'GLMHA r=0.25 no guidance', 'GLMHA r=0.5',
                              'GLMHA r=0.5 no guidance']
    net = compare._network_g(template['network_g'], variants['CSA'])
    assert net['type'] == 'Restormer' and 'rank_ratio' not in net and net['dim'] == template['network_g']['dim']
    opt = compare.train_options(template, 'x', net, seed=7, iters=33, batch=2, gt_size=32, workers=0)
    assert opt['manual_seed'] == 7 and opt['train']['total_iter'] == 33 and opt['train']['scheduler']['periods'] == [33]
    assert 'val' not in opt and list(opt['datasets']) == ['train']
    assert opt['datasets']['train']['gt_size'] == 32 and opt['datasets']['train']['batch_size_per_gpu'] == 2
    assert template['train']['total_iter'] != 33  # the template itself is untouched


def test_warm_start_needs_the_csa_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match='the CSA run of seed 5 has no checkpoint'):
        compare.warm_start_weights(str(tmp_path), 5, {'type': 'GLMHARestormer'}, str(tmp_path / 'x.pth'))
    glmha_only = {k: v for k, v in compare.variants().items() if k != 'CSA'}
    with pytest.raises(ValueError, match="have no 'CSA'"):
        compare.run_comparison(str(tmp_path), glmha_only, [0], 1, warm_start=True)


@pytest.mark.slow
def test_compare_tool_short_run(workdir, capsys):
    rc = compare.main(['--workdir', str(workdir), '--iters', '2', '--seeds', '3', '--batch', '2', '--gt-size', '32',
                    '--warm-start'])
    assert rc == 0
    out = capsys.readouterr().out
    assert '| CSA |' in out and '| GLMHA r=0.5 |' in out and '| GLMHA r=0.5 warm start |' in out
    with open(workdir / 'compare.csv') as f:
        rows = list(csv.DictReader(f))
    assert [(r['variant'], r['seed']) for r in rows] == [('CSA', '3'), ('GLMHA r=0.5', '3'),
                                                          ('GLMHA r=0.5 warm start', '3')]
    assert int(rows[1]['params']) < int(rows[0]['params']) and float(rows[1]['gmacs']) < float(rows[0]['gmacs'])
    # the warm run started from the CSA run's checkpoint, converted: shared tensors equal the CSA weights
    import torch
    init = workdir / 'compare_options' / 'compare_GLMHA_r0.5_warm_start_s3.init.pth'
    csa = torch.load(workdir / 'experiments' / 'compare_CSA_s3' / 'models' / 'net_g_latest.pth')['params']
    warm = torch.load(init)['params']
    assert torch.equal(warm['patch_embed.proj.weight'], csa['patch_embed.proj.weight'])
    assert torch.equal(warm['latent.0.attn.project_out.weight'], csa['latent.0.attn.project_out.weight'])
    assert not (workdir / 'compare_options' / 'compare_GLMHA_r0.5_s3.init.pth').exists()  # the cold run did not
    assert str(init) in open(rows[2]['log']).read()  # basicsr loaded it
    for r in rows:
        assert 5 < float(r['psnr']) < 60 and 0 < float(r['ssim']) <= 1
    assert (workdir / 'compare.png').stat().st_size > 0
    # the runs went through basicsr's pipelines: a training log and saved test images exist
    assert osp.isfile(rows[0]['log']) and 'End of training' in open(rows[0]['log']).read()
    assert (workdir / 'results' / 'test_compare_CSA_s3' / 'visualization' / 'DemoRainTest').is_dir()


def test_retinexformer_variants_and_warm_start(tmp_path):
    """Another host: each variant is the host's whole tiny network; its warm start converts the CSA run's
    checkpoint with swap_attention, which GLMHARetinexFormer loads strict."""
    import yaml
    from basicsr.archs import build_network
    with open(TINY_TRAIN) as f:
        template = yaml.safe_load(f)
    variants = compare.variants([0.5], ['calibration'], host='retinexformer')
    csa = compare._network_g(template['network_g'], variants['CSA'])
    glmha = compare._network_g(template['network_g'], variants['GLMHA r=0.5'])
    assert csa == {'type': 'RetinexFormer', 'attention': 'csa', 'in_channels': 3, 'out_channels': 3, 'n_feat': 8,
                   'stage': 1, 'num_blocks': [1, 1, 1]}
    assert glmha['type'] == 'GLMHARetinexFormer' and glmha['rank_ratio'] == 0.5 and 'dim' not in glmha
    models = tmp_path / 'experiments' / 'compare_CSA_s5' / 'models'
    models.mkdir(parents=True)
    torch.save({'params': build_network(dict(csa)).state_dict()}, models / 'net_g_latest.pth')
    dst = compare.warm_start_weights(str(tmp_path), 5, glmha, str(tmp_path / 'warm.pth'))
    build_network(dict(glmha)).load_state_dict(torch.load(dst, weights_only=True)['params'], strict=True)
    with pytest.raises(ValueError, match='host must be one of'):
        compare.variants(host='mst_l')
