"""Speed and memory measurements, CSA vs GLMHA, side by side in one process.

Every comparison is *interleaved*: each repeat times every variant once, in a
rotating order, so slow drifts of a shared machine hit all variants alike;
the reported figure is the median over repeats.  On CUDA every timed call is
bracketed by ``torch.cuda.synchronize``.  Each sample times enough calls to
last at least ``min_time`` seconds (small layers are timed in loops).

Peak memory of a training step (forward, L1 loss, backward, Adam step, after
one warm-up step so the optimiser state exists): on CUDA the allocator's
``max_memory_allocated`` above the memory held before the step; on CPU
PyTorch's ``MemTracker`` (a dispatch-mode tracker of every tensor's storage),
whose peak counts the same things: parameters, gradients, optimiser state,
activations and temporaries.  :func:`benchmark_checkpoint_memory` measures
the same step with and without the hosts' ``use_checkpoint`` option
(activation checkpointing per transformer block).
"""
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..layers import CSA, GLMHA, csa_macs, glmha_macs
from .baselines import LinformerChannelAttention, linformer_macs
from .complexity import count
from .hosts import HostSpec, Size

HEAD_WIDTH = 48  # Restormer's channels per head
CLOCKS = ('wall', 'cpu')


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(fns: Dict[str, Callable[[], object]], repeats: int, device: torch.device,
                     min_time: float = 0.05, clock: str = 'wall') -> Dict[str, List[float]]:
    """Seconds per call of each function, ``repeats`` samples each, interleaved in rotating order.

    One untimed warm-up call per function first; each sample averages
    ``number`` calls, chosen from the warm-up so a sample lasts >= ``min_time``.
    ``clock='wall'`` measures elapsed time; ``clock='cpu'`` the CPU time of
    this process (``time.process_time``), which does not count time the
    process spends descheduled on a shared machine (CPU device only; with
    several threads it adds up the threads' time).
    """
    if clock not in CLOCKS:
        raise ValueError(f'clock must be one of {CLOCKS}, got {clock!r}')
    if clock == 'cpu' and device.type != 'cpu':
        raise ValueError('clock=cpu measures host CPU time; use clock=wall on a GPU')
    now = time.perf_counter if clock == 'wall' else time.process_time
    number = {}
    for name, fn in fns.items():
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        number[name] = max(1, math.ceil(min_time / max(time.perf_counter() - t0, 1e-9)))
    samples = {name: [] for name in fns}
    names = list(fns)
    for rep in range(repeats):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            fn, n = fns[name], number[name]
            synchronize(device)
            t0 = now()
            for _ in range(n):
                fn()
            synchronize(device)
            samples[name].append((now() - t0) / n)
    return samples


MALLOC_MODES = ('system', 'keep')


def keep_freed_memory() -> None:
    """Make glibc's malloc keep freed memory in the process (``--malloc keep``).

    By default glibc serves large blocks with fresh ``mmap`` pages and hands
    freed memory back to the kernel, so every forward pass page-faults its
    activations in again; on the development VM that was up to 40% of a
    layer's time (thousands of minor faults per call), varying run to run
    with glibc's adaptive threshold.  ``mallopt(M_MMAP_MAX, 0)`` and an
    unlimited ``M_TRIM_THRESHOLD`` keep the memory instead, as a caching
    allocator (jemalloc, tcmalloc, PyTorch's CUDA allocator) does.  Linux/glibc only.
    """
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c'))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        raise ValueError('--malloc keep needs glibc (Linux); use --malloc system') from None
    m_trim_threshold, m_mmap_max = -1, -4
    if not (mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, 2 ** 31 - 1)):
        raise ValueError('glibc rejected mallopt(); use --malloc system')


def minor_page_faults() -> int:
    """Minor page faults of this process so far (0 where the platform does not report them)."""
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except (ImportError, OSError):
        return 0


def heads_for(channels: int) -> int:
    """Heads of a layer with C channels: C/48 (Restormer's head width) when 48 divides C, else 1 (MST-L, MST++)."""
    return channels // HEAD_WIDTH if channels % HEAD_WIDTH == 0 else 1


LAYER_VARIANTS = ('CSA', 'GLMHA', 'GLMHA no guidance', 'Linformer')


def build_layer(variant: str, channels: int, rank_ratio: float) -> nn.Module:
    """One attention layer of the benchmark (``variant`` in :data:`LAYER_VARIANTS`)."""
    heads = heads_for(channels)
    if variant == 'CSA':
        return CSA(channels, heads)
    if variant == 'GLMHA':
        return GLMHA(channels, heads, rank_ratio=rank_ratio)
    if variant == 'GLMHA no guidance':
        return GLMHA(channels, heads, rank_ratio=rank_ratio, guidance='none')
    if variant == 'Linformer':
        return LinformerChannelAttention(channels, heads, rank_ratio=rank_ratio)
    raise ValueError(f'unknown layer variant {variant!r}; use one of {LAYER_VARIANTS}')


def layer_macs(layer: nn.Module, n_pixels: int) -> int:
    """Analytic MACs of one benchmark layer on one image (docs/method.md; tests check them against the counter)."""
    if isinstance(layer, LinformerChannelAttention):
        return sum(linformer_macs(layer.dim, layer.num_heads, layer.kv_rank, n_pixels).values())
    if isinstance(layer, GLMHA):
        return sum(glmha_macs(layer.dim, layer.num_heads, layer.rank, n_pixels, layer.guidance).values())
    return sum(csa_macs(layer.dim, layer.num_heads, n_pixels).values())


@dataclass
class LayerRow:
    channels: int
    side: int          # N = side^2
    variant: str
    rank: int
    ms: float          # median forward time
    spread_ms: float   # (max - min) over repeats
    macs: int
    time_ratio: float  # vs CSA
    mac_ratio: float   # vs CSA


def benchmark_layers(channels: Sequence[int], sides: Sequence[int], rank_ratio: float, repeats: int,
                     device: torch.device, batch: int = 1, variants: Sequence[str] = LAYER_VARIANTS,
                     seed: int = 0, min_time: float = 0.05, clock: str = 'wall') -> List[LayerRow]:
    """Forward time (no grad) of each attention variant over a C x N grid."""
    rows = []
    for c, side in tqdm([(c, s) for c in channels for s in sides], desc='attention layers', unit='config'):
        torch.manual_seed(seed)
        layers = {v: build_layer(v, c, rank_ratio).to(device).eval() for v in variants}
        x = torch.randn(batch, c, side, side, device=device)
        with torch.no_grad():
            samples = time_interleaved({v: (lambda m=m, x=x: m(x)) for v, m in layers.items()}, repeats, device,
                                       min_time, clock)
        med = {v: statistics.median(s) for v, s in samples.items()}
        macs = {v: batch * layer_macs(m, side * side) for v, m in layers.items()}
        for v, m in layers.items():
            rows.append(LayerRow(c, side, v, getattr(m, 'kv_rank', m.rank), med[v] * 1e3,
                                 (max(samples[v]) - min(samples[v])) * 1e3, macs[v],
                                 med[v] / med['CSA'], macs[v] / macs['CSA']))
        del layers, x
    return rows


def profile_layers(channels: int, side: int, rank_ratio: float, repeats: int, device: torch.device,
                   variants: Sequence[str] = ('CSA', 'GLMHA'), top: int = 14) -> str:
    """Where an attention layer's time goes: torch.profiler self time per op and input shape, CSA vs GLMHA.

    Each repeat profiles one forward of every variant (interleaved); the table
    shows the median self time per (op, input shapes) row, the sum over all
    rows, and the ratio to CSA.  Returns Markdown.
    """
    from torch.profiler import ProfilerActivity, profile
    torch.manual_seed(0)
    layers = {v: build_layer(v, channels, rank_ratio).to(device).eval() for v in variants}
    x = torch.randn(1, channels, side, side, device=device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    times = {v: {} for v in variants}
    with torch.no_grad():
        for m in layers.values():
            m(x)
        for _ in range(repeats):
            for v, m in layers.items():
                synchronize(device)
                with profile(activities=acts, record_shapes=True) as prof:
                    m(x)
                    synchronize(device)
                for e in prof.key_averages(group_by_input_shape=True):
                    t = e.self_device_time_total if device.type == 'cuda' else e.self_cpu_time_total
                    key = f'{e.key} {[s for s in e.input_shapes if s][:2]}'
                    times[v].setdefault(key, []).append(t / 1e3)
    med = {v: {k: statistics.median(t + [0.0] * (repeats - len(t))) for k, t in r.items()} for v, r in times.items()}
    keys = sorted(set().union(*med.values()), key=lambda k: -max(med[v].get(k, 0.0) for v in variants))
    head = ' | '.join(f'{v} ms' for v in variants)
    lines = [f'Profile, C={channels}, N={side}² (heads {heads_for(channels)}, rank ratio {rank_ratio:g}), median of '
             f'{repeats}:', '', f'| op [input shapes] | {head} |', '|---|' + '---:|' * len(variants)]
    for k in keys[:top]:
        lines.append(f'| `{k}` | ' + ' | '.join(f'{med[v].get(k, 0.0):.3f}' for v in variants) + ' |')
    totals = {v: sum(med[v].values()) for v in variants}
    lines.append('| **all ops** | ' + ' | '.join(f'**{totals[v]:.3f}**' for v in variants) + ' |')
    macs = {v: layer_macs(m, side * side) for v, m in layers.items()}
    base = variants[0]
    lines += ['', ', '.join(f'{v}: op time / {base} {totals[v] / totals[base]:.3f}, MACs / {base} '
                            f'{macs[v] / macs[base]:.3f}' for v in variants[1:])]
    return '\n'.join(lines) + '\n'


@dataclass
class ModelRow:
    host: str
    size: str
    batch: int
    variant: str
    macs: int
    fwd_ms: float
    fwd_bwd_ms: float
    fwd_ratio: float
    fwd_bwd_ratio: float
    mac_ratio: float


def _train_step(model: nn.Module, inputs: tuple, optimizer=None):
    out = model(*inputs)
    loss = F.l1_loss(out, torch.zeros_like(out))
    loss.backward()
    if optimizer is not None:
        optimizer.step()
    model.zero_grad(set_to_none=True)


def benchmark_models(host: HostSpec, size: Size, variants: Dict[str, Dict], repeats: int, device: torch.device,
                     batch: int = 1, overrides: Dict = None, seed: int = 0, min_time: float = 0.0,
                     clock: str = 'wall') -> List[ModelRow]:
    """Whole-model forward (no grad) and forward+backward times of each variant, interleaved."""
    torch.manual_seed(seed)
    models = {v: host.build(**opts, **(overrides or {})).to(device) for v, opts in variants.items()}
    inputs = host.make_inputs(size, batch, device)
    macs = {}
    for v, m in tqdm(models.items(), desc=f'{host.name}: counting MACs', unit='model'):
        macs[v] = count(m.eval().cpu(), tuple(t.cpu() for t in inputs)).macs
        m.to(device)

    def fwd(m):
        with torch.no_grad():
            m(*inputs)

    for m in models.values():
        m.eval()
    fwd_samples = time_interleaved({v: (lambda m=m: fwd(m)) for v, m in models.items()}, repeats, device,
                                   min_time, clock)
    for m in models.values():
        m.train()
    bwd_samples = time_interleaved({v: (lambda m=m: _train_step(m, inputs)) for v, m in models.items()}, repeats,
                                   device, min_time, clock)
    f = {v: statistics.median(s) for v, s in fwd_samples.items()}
    fb = {v: statistics.median(s) for v, s in bwd_samples.items()}
    base = next(iter(variants))
    return [ModelRow(host.name, 'x'.join(map(str, size)), batch, v, macs[v], f[v] * 1e3, fb[v] * 1e3,
                     f[v] / f[base], fb[v] / fb[base], macs[v] / macs[base]) for v in variants]


def peak_training_memory(model: nn.Module, inputs: tuple, device: torch.device) -> int:
    """Peak bytes of one training step (see the module docstring), after one warm-up step."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    _train_step(model, inputs, optimizer)  # creates the optimiser state
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        _train_step(model, inputs, optimizer)
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before + _tensor_bytes(model, optimizer, inputs)
    from torch.distributed._tools.mem_tracker import MemTracker
    tracker = MemTracker()
    tracker.track_external(model, optimizer, *inputs)
    with tracker:
        _train_step(model, inputs, optimizer)
    return tracker.get_tracker_snapshot('peak')[device]['Total']


def _tensor_bytes(model: nn.Module, optimizer, inputs: tuple) -> int:
    """Bytes of parameters, optimiser state and inputs (held before the step; MemTracker counts them too)."""
    n = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(inputs))
    for state in optimizer.state.values():
        n += sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t))
    return n


@dataclass
class MemoryRow:
    host: str
    size: str
    batch: int
    variant: str
    peak_mib: float
    ratio: float


def benchmark_memory(host: HostSpec, size: Size, variants: Dict[str, Dict], device: torch.device, batch: int = 1,
                     overrides: Dict = None, seed: int = 0) -> List[MemoryRow]:
    """Peak training-step memory of each variant."""
    peaks = {}
    for v, opts in tqdm(variants.items(), desc=f'{host.name}: training-step memory', unit='model'):
        torch.manual_seed(seed)
        model = host.build(**opts, **(overrides or {})).to(device)
        peaks[v] = peak_training_memory(model, host.make_inputs(size, batch, device), device)
        del model
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    base = next(iter(variants))
    return [MemoryRow(host.name, 'x'.join(map(str, size)), batch, v, peaks[v] / 2 ** 20, peaks[v] / peaks[base])
            for v in variants]


@dataclass
class CheckpointRow:
    host: str
    size: str
    batch: int
    variant: str
    peak_mib: float             # without activation checkpointing
    checkpoint_peak_mib: float  # with use_checkpoint
    ratio: float                # checkpoint / without


def benchmark_checkpoint_memory(host: HostSpec, size: Size, variants: Dict[str, Dict], device: torch.device,
                                batch: int = 1, overrides: Dict = None,
                                seed: int = 0) -> Tuple[List[MemoryRow], List[CheckpointRow]]:
    """Peak training-step memory of each variant without and with ``use_checkpoint`` (same weights and input).

    Returns the rows of :func:`benchmark_memory` (without) and the comparison rows.
    """
    plain = benchmark_memory(host, size, variants, device, batch, overrides, seed)
    ckpt = benchmark_memory(host, size, variants, device, batch, dict(overrides or {}, use_checkpoint=True), seed)
    return plain, [CheckpointRow(p.host, p.size, p.batch, p.variant, p.peak_mib, c.peak_mib, c.peak_mib / p.peak_mib)
                   for p, c in zip(plain, ckpt, strict=True)]


# ----------------------------------------------------------------------------------- whole networks, every runtime

RUNTIMES = ('eager', 'eager_train', 'compile', 'compile_train', 'onnxruntime')
RUNTIME_LABELS = {'eager': 'eager forward', 'eager_train': 'eager train step', 'compile': 'torch.compile forward',
                  'compile_train': 'torch.compile train step', 'onnxruntime': 'onnxruntime forward'}


@dataclass
class RuntimeRow:
    host: str
    size: str
    batch: int
    variant: str
    runtime: str        # one of RUNTIMES
    ms: float           # median per call
    spread_ms: float    # (max - min) over repeats
    ratio: float        # vs the first variant (CSA), same runtime
    macs: int
    bytes_moved: int    # analysis.traffic model of one eager forward
    mac_ratio: float
    bytes_ratio: float


def _adam_step(model: nn.Module, inputs: tuple) -> Callable[[], None]:
    """One training step of ``model`` (or its ``torch.compile`` wrapper): forward, L1 loss, backward, Adam step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
    return lambda: _train_step(model, inputs, optimizer)


def _onnx_session(model: nn.Module, host: HostSpec, inputs: tuple, path: str):
    """``model`` exported to ``path`` by the package's exporter and opened with onnxruntime (CPU, torch's threads)."""
    import onnxruntime as ort

    from ..deploy.onnx_export import EXPORT_SIZE, example_inputs, export_onnx
    names = export_onnx(model.cpu(), example_inputs(host, model, *EXPORT_SIZE), path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    feed = {n: t.cpu().numpy() for n, t in zip(names, inputs, strict=True)}
    return lambda: session.run(None, feed)


def build_variants(host: HostSpec, variants: Dict[str, Dict], device: torch.device, overrides: Dict = None,
                   seed: int = 0) -> Dict[str, nn.Module]:
    """Each variant's network of ``host`` on ``device``, every one built from the same seed."""
    models = {}
    for v, opts in variants.items():
        torch.manual_seed(seed)
        models[v] = host.build(**opts, **(overrides or {})).to(device)
    return models


def benchmark_runtimes(host: HostSpec, size: Size, variants: Dict[str, Dict], runtimes: Sequence[str], repeats: int,
                       device: torch.device, work_dir: str, batch: int = 1, overrides: Dict = None, seed: int = 0,
                       min_time: float = 0.0, clock: str = 'wall',
                       compile_backend: str = 'inductor') -> List[RuntimeRow]:
    """Whole-network time of each variant in each runtime, interleaved per runtime, with MAC and bytes ratios.

    Runtimes (:data:`RUNTIMES`): eager forward (no grad), eager training step
    (forward, L1 loss, backward, Adam step), the same two through
    ``torch.compile`` (compiled once before timing), and the network exported
    to ONNX (:mod:`glmha_plugin.deploy.onnx_export`) run with onnxruntime's CPU provider
    (CPU only).  Every variant has the same weights' seed and input; ratios
    are to the first variant in the same runtime.  ``compile_backend`` is
    ``torch.compile``'s backend (the test suite's ``aot_eager`` captures the same
    forward and backward graphs without Inductor's code generation).
    """
    import os.path as osp

    from .traffic import bytes_moved
    unknown = sorted(set(runtimes) - set(RUNTIMES))
    if unknown:
        raise ValueError(f'unknown runtime(s) {unknown}; use some of {list(RUNTIMES)}')
    if 'onnxruntime' in runtimes and device.type != 'cpu':
        raise ValueError("the onnxruntime runtime runs on CPU; use --device cpu (or leave 'onnxruntime' out)")
    models = {v: m.eval() for v, m in build_variants(host, variants, device, overrides, seed).items()}
    inputs = host.make_inputs(size, batch, device)
    macs, moved = {}, {}
    for v, m in tqdm(models.items(), desc=f'{host.name}: counting MACs and bytes', unit='model'):
        macs[v] = count(m.cpu(), tuple(t.cpu() for t in inputs)).macs
        m.to(device)
        moved[v] = bytes_moved(m, inputs).total
    base = next(iter(variants))
    tag = 'x'.join(map(str, size))
    rows = []
    for runtime in runtimes:
        fns = {}
        for v, m in tqdm(models.items(), desc=f'{host.name} {tag}: preparing {runtime}', unit='model'):
            m.train(runtime.endswith('_train'))
            if runtime == 'eager':
                fns[v] = lambda m=m: _no_grad_call(m, inputs)
            elif runtime == 'eager_train':
                fns[v] = _adam_step(m, inputs)
            elif runtime == 'compile':
                # static shapes: a second size recompiles (Inductor failed on the symbolic sizes of a dynamic one)
                compiled = torch.compile(m, dynamic=False, backend=compile_backend)
                fns[v] = lambda c=compiled: _no_grad_call(c, inputs)
            elif runtime == 'compile_train':
                fns[v] = _adam_step(torch.compile(m, dynamic=False, backend=compile_backend), inputs)
            else:
                name = f'{host.name}_{tag}_{v}'.replace(' ', '_').replace('=', '')
                fns[v] = _onnx_session(m, host, inputs, osp.join(work_dir, f'{name}.onnx'))
                m.to(device)
            if runtime.startswith('compile'):   # compile (forward, and backward for training) before timing
                fns[v]()
                fns[v]()
        samples = time_interleaved(fns, repeats, device, min_time, clock)
        med = {v: statistics.median(s) for v, s in samples.items()}
        rows += [RuntimeRow(host.name, tag, batch, v, runtime, med[v] * 1e3, (max(samples[v]) - min(samples[v])) * 1e3,
                            med[v] / med[base], macs[v], moved[v], macs[v] / macs[base], moved[v] / moved[base])
                 for v in variants]
        del fns
    return rows


def _no_grad_call(model: Callable, inputs: tuple) -> None:
    with torch.no_grad():
        model(*inputs)


@dataclass
class PathRow:
    host: str
    size: str
    batch: int
    variant: str
    runtime: str        # 'eager' or 'eager_train'
    path: str           # the layer path forced (glmha_plugin.layers.paths)
    ms: float
    ratio: float        # vs the device's own path, same variant and runtime


def benchmark_paths(host: HostSpec, size: Size, variants: Dict[str, Dict], repeats: int, device: torch.device,
                    batch: int = 1, overrides: Dict = None, seed: int = 0, min_time: float = 0.0,
                    clock: str = 'wall') -> List[PathRow]:
    """Eager forward and training step of each variant with each layer path forced, on ``device``, interleaved.

    Says whether a device's own path pays there: the ratio of every path to
    the one :func:`~glmha_plugin.layers.paths.layer_path` picks for the device.
    """
    from ..layers.paths import PATHS, force_path, layer_path
    own = layer_path(torch.empty(0, device=device)).name
    models = build_variants(host, variants, device, overrides, seed)
    inputs = host.make_inputs(size, batch, device)

    def forced(fn, path):
        def run():
            with force_path(path):
                fn()
        return run

    rows = []
    for runtime in ('eager', 'eager_train'):
        fns = {}
        for v, m in models.items():
            m.train(runtime == 'eager_train')
            fn = (lambda m=m: _no_grad_call(m, inputs)) if runtime == 'eager' else _adam_step(m, inputs)
            for path in PATHS:
                fns[(v, path)] = forced(fn, path)
        samples = time_interleaved(fns, repeats, device, min_time, clock)
        med = {k: statistics.median(s) for k, s in samples.items()}
        rows += [PathRow(host.name, 'x'.join(map(str, size)), batch, v, runtime, path, med[(v, path)] * 1e3,
                         med[(v, path)] / med[(v, own)]) for v in variants for path in PATHS]
    return rows
