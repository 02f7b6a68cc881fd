"""Options of swap_attention and glmha convert that do not fit: one-line errors, nothing changed; an MST option
file converts (docs/reliability.md, the table of fault classes)."""
import json
import os.path as osp

import pytest
import torch

from helpers.common import OPTIONS, TINY_MST, TINY_RESTORMER
from helpers.faults import one_line

TINY = osp.join(OPTIONS, 'tiny')


def test_swap_attention_with_a_rank_ratio_that_is_no_number():
    from glmha_plugin.archs import Restormer
    from glmha_plugin.swap import SwapError, swap_attention
    net = Restormer(**TINY_RESTORMER)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(SwapError) as info:
        swap_attention(net, rank_ratio='abc')
    assert one_line(str(info.value)) == ("rank_ratio must be a number in (0, 1] or {module-path prefix: a number}, "
                                         "got 'abc'")
    with pytest.raises(SwapError, match="rank must be a whole number .* got 2.5 in {'encoder': 2.5}"):
        swap_attention(net, rank={'encoder': 2.5})
    assert net.state_dict().keys() == before.keys()                     # nothing was swapped

def test_convert_checkpoint_with_an_mst_option_file(tmp_path, capsys):
    """MST's MS-MSA layers are converted like Restormer's MDTA; at full rank without guidance exactly."""
    from basicsr.utils.registry import ARCH_REGISTRY

    from glmha_plugin.swap.convert import main
    mst = ARCH_REGISTRY.get('MST')(**TINY_MST).eval()
    torch.save({'params': mst.state_dict()}, tmp_path / 'mst.pth')
    yml = tmp_path / 'glmha.yml'
    yml.write_text(json.dumps({'network_g': dict(type='GLMHAMST', rank_ratio=1.0, guidance='none', **TINY_MST)}))
    assert main(['--input', str(tmp_path / 'mst.pth'), '--output', str(tmp_path / 'out.pth'), '-opt', str(yml)]) == 0
    glmha = ARCH_REGISTRY.get('GLMHAMST')(rank_ratio=1.0, guidance='none', **TINY_MST).eval()
    glmha.load_state_dict(torch.load(tmp_path / 'out.pth', weights_only=True)['params'], strict=True)
    x, mask = torch.rand(1, 28, 32, 32), torch.rand(1, 28, 32, 32 + 27 * 2)   # Phi: band i shifted by 2 i
    with torch.no_grad():
        assert torch.allclose(glmha(x, mask), mst(x, mask), atol=1e-5)
    assert main(['--input', str(tmp_path / 'mst.pth'), '--output', str(tmp_path / 'o2.pth'),
                 '-opt', osp.join(TINY, 'Tiny_CASSI_MST_GLMHA.yml')]) == 0      # the shipped (rank 0.5) file
    restormer = tmp_path / 'restormer.pth'
    torch.save({'params': ARCH_REGISTRY.get('Restormer')(**TINY_RESTORMER).state_dict()}, restormer)
    capsys.readouterr()
    assert main(['--input', str(restormer), '--output', str(tmp_path / 'o3.pth'), '-opt', str(yml)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "is not a MST (CSA) checkpoint matching network_g" in err and not (tmp_path / 'o3.pth').exists()
