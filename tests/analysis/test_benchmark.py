"""The benchmark machinery (interleaving, memory, targets) and a seconds-long run of glmha benchmark."""
import pytest
import torch

from glmha_plugin.analysis import benchmark as bench
from glmha_plugin.analysis import benchmark_report as report
from glmha_plugin.layers import CSA, GLMHA

CPU = torch.device('cpu')


def test_time_interleaved_rotates_and_counts():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in 'abc'}
    samples = bench.time_interleaved(fns, repeats=3, device=CPU, min_time=0)
    assert {k: len(v) for k, v in samples.items()} == {'a': 3, 'b': 3, 'c': 3}
    assert all(t >= 0 for v in samples.values() for t in v)
    timed = calls[3:]  # after one warm-up call each
    assert timed == list('abc') + list('bca') + list('cab')


def test_time_interleaved_rejects_bad_clocks():
    with pytest.raises(ValueError, match='clock must be one of'):
        bench.time_interleaved({'a': lambda: None}, 1, CPU, clock='gpu')
    with pytest.raises(ValueError, match='use clock=wall on a GPU'):
        bench.time_interleaved({'a': lambda: None}, 1, torch.device('cuda'), clock='cpu')


def test_layers_of_the_grid():
    assert [bench.heads_for(c) for c in (28, 31, 48, 96, 192, 384)] == [1, 1, 1, 2, 4, 8]
    x = torch.randn(1, 96, 8, 8)
    for variant in bench.LAYER_VARIANTS:
        layer = bench.build_layer(variant, 96, 0.5)
        assert layer(x).shape == x.shape
    assert bench.layer_macs(bench.build_layer('GLMHA', 96, 0.5), 64) < bench.layer_macs(CSA(96, 2), 64)
    with pytest.raises(ValueError, match='unknown layer variant'):
        bench.build_layer('Performer', 96, 0.5)


def test_training_memory_counts_model_state_and_grows_with_input():
    torch.manual_seed(0)
    net = GLMHA(16, 2)
    param_bytes = sum(p.numel() * 4 for p in net.parameters())
    small = bench.peak_training_memory(net, (torch.randn(1, 16, 8, 8),), CPU)
    large = bench.peak_training_memory(GLMHA(16, 2), (torch.randn(1, 16, 32, 32),), CPU)
    assert small >= 4 * param_bytes          # parameters, gradients, Adam's two moments
    assert large > small + 16 * 32 * 32 * 4  # at least one more activation of the larger input


def test_targets_per_row():
    row = bench.LayerRow(96, 128, 'GLMHA', 48, 1.0, 0.1, 10, time_ratio=0.74, mac_ratio=0.70)
    assert report.layer_target(row) == 'met'
    row.time_ratio = 0.76
    assert report.layer_target(row) == 'MISSED'
    row.channels = 31
    assert report.layer_target(row) == '-'  # outside C >= 48
    model = bench.ModelRow('restormer', '3x64x64', 1, 'GLMHA r=0.5 calibration', 1, 1, 1, 0.90, 0.9, 0.86)
    assert report.model_target(model) == 'met'
    memory = bench.MemoryRow('restormer', '3x64x64', 1, 'GLMHA r=0.5 calibration', 100, 0.96)
    assert report.memory_target(memory) == 'MISSED'


def test_benchmark_tool_smoke(tmp_path, capsys):
    rc = report.main(['--tiny', '--device', 'cpu', '--repeats', '1', '--min-time', '0', '--channels', '48',
                    '--sides', '16', '--model-size', 'restormer=3x16x16', 'mst_l=28x16x16', 'mst_plus_plus=3x16x16',
                    'retinexformer=3x16x16', '--memory-batch', '1', '--out-dir', str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    for text in ('## Attention layer alone', '| 48 | 16² | Linformer |', '## Whole model', '## Peak memory',
                 '| restormer | 3x16x16 | 1 | GLMHA r=0.5 calibration |', 'torch threads',
                 '| mst_l | 28x16x16 | 1 | GLMHA r=0.5 calibration |', '| mst_plus_plus | 3x16x16 | 1 | CSA |',
                 '| retinexformer | 3x16x16 | 1 | GLMHA r=0.5 calibration |'):
        assert text in out
    for f in ('benchmark.md', 'benchmark_layers.csv', 'benchmark_models.csv', 'benchmark_memory.csv',
              'benchmark.png'):
        assert (tmp_path / f).stat().st_size > 0
    # no GPU: CUDA is not available; with a GPU: the CPU clock cannot time it. Either way a clear refusal.
    with pytest.raises(SystemExit) as exc:
        report.main(['--parts', 'layers', '--device', 'cuda', '--clock', 'cpu', '--out-dir', str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2  # argparse's usage error
    assert ('--clock cpu measures host CPU time' if torch.cuda.is_available() else 'CUDA is not available') in err


def test_checkpoint_memory_comparison(tmp_path, capsys):
    """--checkpoint: each model measured without and with use_checkpoint; the ratio and the 0.6 target per row."""
    assert report.main(['--tiny', '--parts', 'memory', '--checkpoint', '--device', 'cpu', '--hosts', 'restormer',
                      '--memory-size', 'restormer=3x32x32', '--out-dir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '## Peak training-step memory with activation checkpointing' in out
    assert '| restormer | 3x32x32 | 2 | GLMHA r=0.5 calibration |' in out
    rows = {r['variant']: r for r in __import__('csv').DictReader(open(tmp_path / 'benchmark_checkpoint.csv'))}
    assert set(rows) == {'CSA', 'GLMHA r=0.5 calibration'}
    for r in rows.values():
        assert float(r['checkpoint_peak_mib']) < 0.8 * float(r['peak_mib'])   # activations inside blocks not kept
        assert float(r['ratio']) == pytest.approx(float(r['checkpoint_peak_mib']) / float(r['peak_mib']), rel=1e-3)
    row = bench.CheckpointRow('mst_plus_plus', '3x256x256', 2, 'GLMHA r=0.5 calibration', 100, 61, 0.61)
    assert report.checkpoint_target(row) == 'MISSED'
    row.ratio = 0.6
    assert report.checkpoint_target(row) == 'met'
    row.host = 'mst_l'
    assert report.checkpoint_target(row) == '-'


def test_runtime_targets_follow_the_bytes_bound():
    """<= 0.92 for GLMHA-Restormer at 3x128x128 in eager and onnxruntime forward; where the bytes ratio is above
    0.92 the limit is the bytes ratio + 0.02; other rows have no target."""
    row = bench.RuntimeRow('restormer', '3x128x128', 1, 'GLMHA r=0.5 calibration', 'eager', 100, 1, 0.93, 1, 1,
                           0.884, 0.90)
    assert report.runtime_limit(row) == 0.92 and report.runtime_target(row) == 'MISSED (<= 0.920)'
    row.bytes_ratio = 0.94
    assert report.runtime_limit(row) == pytest.approx(0.96) and report.runtime_target(row).startswith('met')
    for change in (dict(runtime='eager_train'), dict(size='3x256x256'), dict(variant='CSA'), dict(host='mst_l'),
                   dict(variant='GLMHA r=0.5 none')):
        other = bench.RuntimeRow(**{**row.__dict__, **change})
        assert report.runtime_target(other) == '-'


def test_runtimes_and_paths_tool(tmp_path, capsys):
    """The runtimes part times whole networks interleaved per runtime, with MAC and bytes ratios; the paths part
    forces each layer path; both write their CSV."""
    assert report.main(['--tiny', '--parts', 'runtimes', 'paths', '--runtimes', 'eager', 'eager_train',
                        '--device', 'cpu', '--hosts', 'restormer', '--runtime-size', 'restormer=3x16x16',
                        'restormer=3x24x24', '--repeats', '2', '--min-time', '0', '--out-dir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '## Whole networks in every runtime' in out and '## Layer paths on this device' in out
    rows = list(__import__('csv').DictReader(open(tmp_path / 'benchmark_runtimes.csv')))
    assert [(r['size'], r['variant'], r['runtime']) for r in rows] == [
        (size, v, rt) for size in ('3x16x16', '3x24x24') for rt in ('eager', 'eager_train')
        for v in ('CSA', 'GLMHA r=0.5 calibration')]
    for r in rows:
        assert float(r['ms']) > 0
        assert 0.5 < float(r['mac_ratio']) <= 1 and 0.5 < float(r['bytes_ratio']) <= 1.05
        if r['variant'] == 'CSA':
            assert float(r['ratio']) == 1.0 and float(r['mac_ratio']) == 1.0
    paths = list(__import__('csv').DictReader(open(tmp_path / 'benchmark_paths.csv')))
    assert {(r['runtime'], r['path']) for r in paths} == {(rt, p) for rt in ('eager', 'eager_train')
                                                          for p in ('cpu', 'cuda')}
    assert all(float(r['ratio']) == 1.0 for r in paths if r['path'] == 'cpu')
    with pytest.raises(SystemExit):
        report.main(['--parts', 'runtimes', '--runtime-size', 'restormer=3x16', '--out-dir', str(tmp_path)])


def test_bytes_moved_counts_operands_and_results_once():
    from glmha_plugin.analysis.traffic import bytes_moved
    conv = torch.nn.Conv2d(4, 6, 1, bias=False)
    t = bytes_moved(conv, torch.randn(2, 4, 5, 5))
    assert t.total == 4 * (2 * 4 * 25 + 6 * 4 + 2 * 6 * 25)          # input, weight, output
    t = bytes_moved(lambda x: (x.view(-1) + x.view(-1)[:1].expand(50)).view(2, 25), torch.randn(2, 25))  # views free
    assert t.by_op == {'add': 4 * (50 + 1 + 50)}                      # the broadcast operand counts once


@pytest.mark.slow
def test_compile_and_onnxruntime_runtimes(tmp_path):
    """torch.compile forward and train step and onnxruntime forward of the tiny Restormer pair (compiled with
    aot_eager: the same graph capture, forward and backward, without Inductor's code generation, which took
    about 5 minutes here; Inductor on the layers: tests/deploy/test_export.py::test_compile_layer_inductor)."""
    from glmha_plugin.analysis.hosts import attention_variants, get_host
    host = get_host('restormer')
    rows = bench.benchmark_runtimes(host, (3, 16, 16), attention_variants([0.5], ['calibration']),
                                    ['compile', 'compile_train', 'onnxruntime'], 1, CPU, str(tmp_path),
                                    overrides=host.tiny, compile_backend='aot_eager')
    assert [(r.runtime, r.variant) for r in rows] == [(rt, v) for rt in ('compile', 'compile_train', 'onnxruntime')
                                                      for v in ('CSA', 'GLMHA r=0.5 calibration')]
    assert all(r.ms > 0 for r in rows) and len(list(tmp_path.glob('*.onnx'))) == 2


def test_breakdown_splits_the_forward_into_parts_per_level(tmp_path, capsys):
    """Attention, feed-forward and layer-norm time per level of each network, inside the whole call."""
    assert report.main(['--tiny', '--parts', 'breakdown', '--device', 'cpu', '--hosts', 'restormer', 'mst_plus_plus',
                        '--runtime-size', 'restormer=3x16x16', 'mst_plus_plus=3x16x16', '--repeats', '3',
                        '--out-dir', str(tmp_path)]) == 0
    assert '## Where the forward time goes' in capsys.readouterr().out
    rows = list(__import__('csv').DictReader(open(tmp_path / 'benchmark_breakdown.csv')))
    restormer = [r for r in rows if r['host'] == 'restormer']
    levels = ['encoder_level1', 'encoder_level2', 'encoder_level3', 'latent', 'decoder_level3', 'decoder_level2',
              'decoder_level1', 'refinement']      # one block each in the tiny configuration
    for variant in ('CSA', 'GLMHA r=0.5 calibration'):
        mine = {(r['part'], r['where']): r for r in restormer if r['variant'] == variant}
        for part in ('attention', 'feed-forward'):
            assert sorted(w for p, w in mine if p == part) == sorted(levels)
            assert all(mine[(part, w)]['calls'] == '1' and float(mine[(part, w)]['ms']) > 0 for w in levels)
        assert all(mine[('layer norm', w)]['calls'] == '2' for w in levels)   # norm1 and norm2 of the block
        whole = float(mine[('whole network', 'all')]['ms'])
        assert float(mine[('rest', 'all')]['ms']) >= 0
        assert all(float(r['ms']) <= whole for k, r in mine.items())
    assert all(float(r['ratio']) == 1.0 for r in restormer if r['variant'] == 'CSA')
    spectral = {r['part'] for r in rows if r['host'] == 'mst_plus_plus'}
    assert spectral == {'attention', 'feed-forward', 'layer norm', 'rest', 'whole network'}


def test_markdown_table_aligns_and_checks_its_columns():
    from glmha_plugin.analysis.tables import markdown_table
    assert markdown_table(['a', 'n'], 'lr', [['x', 1], ['y', 2.5]]) == '| a | n |\n|---|---:|\n| x | 1 |\n| y | 2.5 |\n'
    with pytest.raises(ValueError, match='2 columns but 3 alignments'):
        markdown_table(['a', 'n'], 'lrr', [])
