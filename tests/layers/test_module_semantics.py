"""Tools that act on submodules reach every projection of the attention and feed-forward layers.

Forward hooks, ``torch.nn.utils.prune`` (a forward pre-hook recomputing the
weight from ``weight_orig * mask``) followed by two training steps, a
``weight_norm`` parametrisation, and a LoRA-style wrapper (a module put in the
projection's place that adds a low-rank delta in its forward) must each
change what a layer computes exactly as they change a plain ``nn.Conv2d`` /
``nn.Linear``: the layer's output equals a reference that *calls* the
(modified) projection modules as plain functions on the inputs the layer's
equations give them (docs/method.md: with guidance, the K/V rows of Restormer's
``qkv`` read g * X, and MS-MSA's ``to_q`` / ``to_v`` read g * x).
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, prune

from glmha_plugin.layers import CSA, GLMHA, GatedDconvFFN, SpectralMSA
from glmha_plugin.layers.paths import PATHS, force_path

TOOLS = ('hook', 'prune', 'weight_norm', 'lora')


class LoRA(nn.Module):
    """A wrapper in the style of LoRA adapters: ``base(x) + up(down(x))`` with a rank-2 bottleneck."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        if isinstance(base, nn.Linear):
            self.down, self.up = nn.Linear(base.in_features, 2, bias=False), nn.Linear(2, base.out_features, bias=False)
        else:
            self.down = nn.Conv2d(base.in_channels, 2, 1, bias=False)
            self.up = nn.Conv2d(2, base.out_channels, 1, bias=False)
        nn.init.normal_(self.up.weight, std=0.3)

    def forward(self, x):
        return self.base(x) + self.up(self.down(x))


# ------------------------------------------------------------------ references calling the modules as functions


def channel_attention_reference(m, x):
    """Restormer's MDTA / GLMHA, every projection called as a plain module on the input its equation names."""
    b, c, h, w = x.shape
    r = m.rank
    if m.calib is None:
        qkv = m.qkv(x)
    else:
        g = m.calib(x)[:, :, None, None]
        qkv = torch.cat([m.qkv(x)[:, :c], m.qkv(x * g)[:, c:]], dim=1)   # Q rows read x, K/V rows read g * x
    q, k, v = (t.reshape(b, m.num_heads, -1, h * w) for t in m.qkv_dwconv(qkv).split([c, r, r], dim=1))
    attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * m.temperature).softmax(-1)
    return m.project_out((attn @ v).reshape(b, c, h, w))


def spectral_reference(m, x, guide=None):
    """MS-MSA (CSA or GLMHA), projections and the positional branch called as plain modules."""
    b, h, w, c = x.shape
    r, n = m.rank, h * w
    tokens = x.reshape(b, n, c)
    scaled = tokens if m.calib is None else tokens * m.calib(x.permute(0, 3, 1, 2)).unsqueeze(1)
    qry, key, val = m.to_k(tokens), m.to_q(scaled), m.to_v(scaled)
    factor = m.value_guide(guide, b, h, w)
    att = val if factor is None else val * factor
    qry, key, att = (t.reshape(b, n, m.num_heads, -1).permute(0, 2, 3, 1) for t in (qry, key, att))
    attn = (F.normalize(qry, dim=-1) @ F.normalize(key, dim=-1).transpose(-2, -1) * m.rescale).softmax(-1)
    out = m.proj((attn @ att).permute(0, 3, 1, 2).reshape(b, n, c)).view(b, h, w, c)
    values = val.reshape(b, h, w, r).permute(0, 3, 1, 2)
    expanded = values if r == c else values.index_select(1, torch.arange(c) * r // c)   # expand_C
    return out + m.pos_emb(expanded).permute(0, 2, 3, 1)


def ffn_reference(m, x):
    x1, x2 = m.dwconv(m.project_in(x)).chunk(2, dim=1)
    return m.project_out(F.gelu(x1) * x2)


# ------------------------------------------------------------------ the layers and their projections

def _restormer_case(build):
    def make():
        torch.manual_seed(0)
        m = build()
        with torch.no_grad():
            m.temperature.uniform_(0.5, 2)
        return m, (torch.randn(2, 16, 5, 6),), channel_attention_reference
    return make


def _spectral_case(mask_step=None, **kwargs):
    def make():
        torch.manual_seed(0)
        m = SpectralMSA(16, 2, mask_step=mask_step, **kwargs)
        with torch.no_grad():
            m.rescale.uniform_(0.5, 2)
        x = torch.randn(2, 5, 6, 16)
        inputs = (x,) if mask_step is None else (x, torch.rand(2, 16, 5, 6 + 2 * 16))
        return m, inputs, spectral_reference
    return make


def _ffn_case():
    torch.manual_seed(0)
    return GatedDconvFFN(16, 2.66, bias=True), (torch.randn(2, 16, 5, 6),), ffn_reference


LAYERS = {
    'CSA': (_restormer_case(lambda: CSA(16, 2)), ('qkv', 'project_out')),
    'GLMHA': (_restormer_case(lambda: GLMHA(16, 2, rank=8)), ('qkv', 'project_out')),
    'GLMHA bias': (_restormer_case(lambda: GLMHA(16, 2, bias=True, rank=8)), ('qkv', 'project_out')),
    'GLMHA no guidance': (_restormer_case(lambda: GLMHA(16, 2, rank=8, guidance='none')), ('qkv', 'project_out')),
    'GDFN': (_ffn_case, ('project_in', 'project_out')),
    'MS-MSA': (_spectral_case(), ('to_q', 'to_k', 'to_v', 'proj', 'pos_emb.0')),
    'MS-MSA GLMHA mask': (_spectral_case(2, attention='glmha', rank=8), ('to_q', 'to_k', 'to_v', 'proj', 'pos_emb.0')),
    'MS-MSA GLMHA no guidance': (_spectral_case(attention='glmha', rank=8, guidance='none'),
                                 ('to_q', 'to_k', 'to_v', 'proj', 'pos_emb.0')),
}
PATH_DEPENDENT = ('CSA', 'GLMHA', 'GLMHA bias', 'GLMHA no guidance')   # their computation differs by layer path
CASES = [(layer, proj, path) for layer, (_, projs) in LAYERS.items() for proj in projs
         for path in (sorted(PATHS) if layer in PATH_DEPENDENT else ['cpu'])]


def _train_two_steps(m, inputs):
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    weights = None
    for _ in range(2):
        out = m(*inputs)
        weights = torch.linspace(-1, 1, out.numel()).view_as(out) if weights is None else weights
        opt.zero_grad()
        (out * weights).sum().backward()
        opt.step()


class _OutputHook:
    """A forward hook that counts its calls, records the module's input and output, and changes the output."""

    def __init__(self):
        self.calls, self.inputs, self.outputs = 0, None, None

    def __call__(self, module, args, output):
        self.calls += 1
        self.inputs, self.outputs = args, output
        return output * 1.25 + 0.05


@pytest.mark.parametrize('tool', TOOLS)
@pytest.mark.parametrize('layer,proj,path', CASES)
def test_tool_changes_the_layer_as_it_changes_the_plain_module(layer, proj, tool, path):
    make, _ = LAYERS[layer]
    m, inputs, reference = make()
    m = m.double()
    inputs = tuple(t.double() for t in inputs)
    if tool == 'lora' and proj == 'pos_emb.0':
        pytest.skip('a depth-wise conv takes no 1x1 low-rank adapter')
    with force_path(path):
        before = m(*inputs).detach()
        target = m.get_submodule(proj)
        hook = None
        if tool == 'hook':
            hook = _OutputHook()
            target.register_forward_hook(hook)
        elif tool == 'prune':
            prune.l1_unstructured(target, 'weight', amount=0.5)
        elif tool == 'weight_norm':
            parametrizations.weight_norm(target)
            with torch.no_grad():   # a new direction (a per-row scale alone is undone by the L2 norms of keys)
                v = target.parametrizations.weight.original1
                v.add_(0.5 * torch.randn(v.shape, generator=torch.Generator().manual_seed(1), dtype=v.dtype))
        else:
            m.set_submodule(proj, LoRA(target).double())
        changed = m(*inputs)
        assert not torch.allclose(changed, before), f'{tool} on {proj} had no effect on the layer'
        if hook is not None:
            assert hook.calls == 1, f'the hook on {proj} fired {hook.calls} times in one forward'
            hook.calls = 0
            want = reference(m, *inputs)       # hooks fire in the reference too: one (same) change per call
            torch.testing.assert_close(changed, want)
            return
        torch.testing.assert_close(changed, reference(m, *inputs))
        snapshot = {n: p.detach().clone() for n, p in m.named_parameters()}
        _train_two_steps(m, inputs)
        moved = [n for n, p in m.named_parameters() if n.startswith(proj + '.') and not torch.equal(p, snapshot[n])]
        assert moved, f'training did not reach the parameters of {proj} ({tool})'
        torch.testing.assert_close(m(*inputs), reference(m, *inputs))
        if tool == 'prune':
            assert (target.weight[target.weight_mask == 0] == 0).all()


@pytest.mark.parametrize('path', sorted(PATHS))
@pytest.mark.parametrize('layer,proj', [('GLMHA', 'qkv'), ('CSA', 'qkv'), ('GLMHA', 'project_out'),
                                        ('MS-MSA GLMHA mask', 'to_q'), ('MS-MSA GLMHA mask', 'to_k'),
                                        ('GDFN', 'project_in')])
def test_hooks_see_the_real_input_and_output(layer, proj, path):
    """Recorded input and output are the tensors the layer's equations feed and take (the guided K/V rows of
    GLMHA's qkv are those of g * X, with X as the recorded input)."""
    make, _ = LAYERS[layer]
    m, inputs, reference = make()
    seen = []
    m.get_submodule(proj).register_forward_hook(lambda mod, args, out: seen.append((args, out)))
    with force_path(path), torch.no_grad():
        m(*inputs)
        (args, out), = seen
        module = m.get_submodule(proj)
        if proj == 'qkv' and getattr(m, 'calib', None) is not None:
            c = m.dim
            x, = args
            g = m.calib(x)[:, :, None, None]
            want = torch.cat([F.conv2d(x, module.weight[:c]), F.conv2d(x * g, module.weight[c:])], dim=1)
        elif proj in ('to_q', 'to_v') and m.calib is not None:
            want = F.linear(args[0], module.weight)    # the recorded input is the guided tokens
            torch.testing.assert_close(args[0], inputs[0].reshape(2, 30, 16) *
                                       m.calib(inputs[0].permute(0, 3, 1, 2)).unsqueeze(1))
        else:
            want = type(module).forward(module, *args)
        torch.testing.assert_close(out, want)
        if layer in ('GLMHA', 'CSA', 'GDFN') and proj != 'project_out':
            torch.testing.assert_close(args[0], inputs[0])
