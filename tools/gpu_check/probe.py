"""Run ``glmha-train`` and record what the GPU check verifies about the run.

    python -m gpu_check.probe --probe-out DIR -opt X.yml [--auto_resume] [--launcher pytorch] ...
    torchrun --nproc_per_node=1 -m gpu_check.probe --probe-out DIR -opt X.yml --launcher pytorch

Everything after ``--probe-out DIR`` goes to basicsr's unmodified
``train_pipeline``.  The model basicsr builds is watched (a wrapper around
``basicsr.train.build_model``): the dtype of every convolution's output while
training and while validating (so mixed precision is seen, not assumed), the
loss values of every iteration, and, at the end, whether every weight is
finite, their dtype and device, and the process group's backend.  Each rank
writes ``DIR/rank<R>.json``.
"""
import json
import math
import os
import os.path as osp
import sys


def _watch(model, record: dict):
    """Hooks on the network's convolutions and a wrapper around ``optimize_parameters``."""
    import torch
    net = model.get_bare_model(model.net_g)
    seen = {'train': set(), 'eval': set()}

    def hook(module, inputs, output):
        seen['train' if module.training and torch.is_grad_enabled() else 'eval'].add(str(output.dtype))

    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(hook)
    optimize = model.optimize_parameters

    def optimize_parameters(current_iter):
        optimize(current_iter)
        record['losses'].append([current_iter, {k: float(v) for k, v in model.log_dict.items()}])

    model.optimize_parameters = optimize_parameters
    record['conv_dtypes'] = seen
    return net


def _final(net, record: dict):
    import torch
    import torch.distributed as dist
    state = net.state_dict()
    record['weights_finite'] = all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point())
    record['weight_dtypes'] = sorted({str(t.dtype) for t in state.values() if t.is_floating_point()})
    record['device'] = str(next(net.parameters()).device)
    record['backend'] = dist.get_backend() if dist.is_available() and dist.is_initialized() else None
    record['world_size'] = dist.get_world_size() if record['backend'] else 1
    record['conv_dtypes'] = {k: sorted(v) for k, v in record['conv_dtypes'].items()}
    record['losses_finite'] = all(math.isfinite(v) for _, losses in record['losses'] for v in losses.values())


def main(argv=None):
    import basicsr.train as bt

    import glmha_plugin.commands.train
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) < 2 or argv[0] != '--probe-out':
        raise SystemExit('usage: python -m gpu_check.probe --probe-out DIR -opt X.yml [basicsr options]')
    out_dir, argv = argv[1], argv[2:]
    record = {'losses': []}
    nets = []
    build = bt.build_model

    def build_and_watch(opt):
        model = build(opt)
        nets.append(_watch(model, record))
        return model

    bt.build_model = build_and_watch
    try:
        glmha_plugin.commands.train.main(argv)
    finally:
        bt.build_model = build
    _final(nets[0], record)
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, f'rank{os.environ.get("RANK", "0")}.json'), 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=1)


if __name__ == '__main__':  # spawned DataLoader workers re-import this module
    main()
