"""Step ``parity``: every architecture computes the same function on CUDA as on CPU, in float32.

For each host of :data:`glmha_plugin.analysis.hosts.HOSTS` and each of its
registered architectures (the CSA model and its GLMHA twin: Restormer,
GLMHARestormer, MST, GLMHAMST, MST_Plus_Plus, GLMHAMSTPlusPlus; a host added
there is covered here), a tiny configuration (the host's ``tiny`` options) in
eval mode gets fresh random inputs at batch 1 and 2 (some layer paths are
chosen by batch size).  Compared, as relative errors ``|a - b| / |b|`` over the
whole output and over all parameter gradients of a random linear loss:

* CUDA float32 (TF32 off) against CPU float32: must be <= 1e-4 (the criterion);
* CPU float32 against CPU float64 (the reference; also runs without a GPU);
* CUDA with TF32 on (cuDNN's default, what training uses), for information.

Without CUDA only the float64 comparison runs, and the step is ``partial``.
"""
import copy
import sys
from typing import Dict, List, Optional, Tuple

import torch

from . import FAIL, PARTIAL, PASS, StepResult, step_main, step_parser

TOLERANCE = 1e-4
SIDE, QUICK_SIDE = 64, 32
BATCHES = (1, 2)


def architectures() -> List[Tuple[object, str]]:
    """``(host, arch name)`` for every registered architecture of every known host."""
    from glmha_plugin.analysis.hosts import host_archs
    return [(host, arch) for arch, host in host_archs().items()]


def build(host, arch: str) -> torch.nn.Module:
    from basicsr.utils.registry import ARCH_REGISTRY
    return ARCH_REGISTRY.get(arch)(**dict(host.default_options, **host.tiny)).eval()


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu().flatten(), b.detach().double().cpu().flatten()
    err = ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
    return err if torch.isfinite(a).all() else float('inf')


def forward_backward(model: torch.nn.Module, inputs: tuple, weight: torch.Tensor):
    """Output and the flattened parameter gradients of ``(output * weight).sum()``."""
    model.zero_grad(set_to_none=True)
    out = model(*inputs)
    (out * weight.to(out)).sum().backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return out.detach(), grads.detach()


def _on(model, inputs, weight, device, dtype):
    m = copy.deepcopy(model).to(device=device, dtype=dtype)
    return forward_backward(m, tuple(t.to(device=device, dtype=dtype) for t in inputs), weight)


def compare(host, arch: str, side: int, batch: int, device: Optional[str], seed: int = 0) -> Dict:
    """One row of the table: the relative errors of :func:`forward_backward` between devices and precisions.

    ``device``: the accelerator compared with the CPU (``'cuda'``), or None for the float64 comparison alone.
    """
    torch.manual_seed(seed)
    model = build(host, arch)
    size = (host.paper_sizes[0][0], side, side)
    inputs = host.make_inputs(size, batch, torch.device('cpu'))
    out_shape = model(*inputs).shape
    weight = torch.randn(out_shape)
    ref = _on(model, inputs, weight, 'cpu', torch.float64)
    cpu = _on(model, inputs, weight, 'cpu', torch.float32)
    row = {'arch': arch, 'input': f'{batch}x' + 'x'.join(map(str, size)),
           'cpu32_vs_64': max(rel_error(cpu[0], ref[0]), rel_error(cpu[1], ref[1]))}
    if device is not None:
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        try:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            gpu = _on(model, inputs, weight, device, torch.float32)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            tf32 = _on(model, inputs, weight, device, torch.float32)
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
        row.update(fwd=rel_error(gpu[0], cpu[0]), grad=rel_error(gpu[1], cpu[1]),
                   gpu_vs_64=max(rel_error(gpu[0], ref[0]), rel_error(gpu[1], ref[1])),
                   tf32=max(rel_error(tf32[0], cpu[0]), rel_error(tf32[1], cpu[1])))
    row['ok'] = all(row[k] <= TOLERANCE for k in ('cpu32_vs_64', 'fwd', 'grad') if k in row)
    return row


def table(rows: List[Dict], cuda: bool) -> str:
    if cuda:
        head = ('| architecture | input | CUDA vs CPU fwd | CUDA vs CPU grad | CUDA vs float64 | CPU vs float64 '
                '| TF32 on vs CPU (info) | <= 1e-4 |\n|---|---|---:|---:|---:|---:|---:|---|\n')
        body = [f'| {r["arch"]} | {r["input"]} | {r["fwd"]:.2e} | {r["grad"]:.2e} | {r["gpu_vs_64"]:.2e} | '
                f'{r["cpu32_vs_64"]:.2e} | {r["tf32"]:.2e} | {"yes" if r["ok"] else "**NO**"} |' for r in rows]
    else:
        head = '| architecture | input | CPU float32 vs float64 (fwd, grad) | <= 1e-4 |\n|---|---|---:|---|\n'
        body = [f'| {r["arch"]} | {r["input"]} | {r["cpu32_vs_64"]:.2e} | {"yes" if r["ok"] else "**NO**"} |'
                for r in rows]
    return head + '\n'.join(body) + '\n'


def run(args) -> StepResult:
    import glmha_plugin  # noqa: F401  (registers the architectures)
    cuda = torch.cuda.is_available()
    side = QUICK_SIDE if args.quick else SIDE
    rows = []
    for host, arch in architectures():
        for batch in BATCHES:
            rows.append(compare(host, arch, side, batch, 'cuda' if cuda else None))
            print(f'{arch:18s} batch {batch}: ' + ', '.join(f'{k} {v:.2e}' for k, v in rows[-1].items()
                                                             if isinstance(v, float)), flush=True)
    archs = sorted({r['arch'] for r in rows})
    md = ('Relative errors, output and all parameter gradients of a random linear loss, eval mode, fresh random '
          'inputs; the reference is the same model in float64 on CPU.\n\n' + table(rows, cuda))
    bad = [f'{r["arch"]} {r["input"]}' for r in rows if not r['ok']]
    if bad:
        return StepResult(FAIL, f'relative error above {TOLERANCE:g}: {", ".join(bad)}', md)
    if not cuda:
        return StepResult(PARTIAL, f'no CUDA device: CUDA vs CPU not run; CPU float32 vs float64 <= {TOLERANCE:g} '
                                   f'for {len(archs)} architectures', md)
    worst = max(max(r['fwd'], r['grad']) for r in rows)
    return StepResult(PASS, f'{len(archs)} architectures: CUDA vs CPU float32 <= {TOLERANCE:g} (worst {worst:.1e})', md)


if __name__ == '__main__':
    sys.exit(step_main(run, step_parser(__doc__.split('\n\n')[0])))
