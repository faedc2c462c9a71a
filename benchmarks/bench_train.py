"""Training throughput: bnnkit's trainer vs a straightforward PyTorch loop, side by side.

Same QuickNet-style architecture (float stem, binary 3x3 blocks, float transitions and
head), same batch size and data (Fashion-MNIST if installed, else synthetic 28x28). Each
side runs in its own worker process, because what the trainer does to its process (the
allocator settings of ``bnnkit.train.perf``) is part of what is compared; the main process
hands out the timed windows in turns (A B C, A B C, ...), so every side sees the same load.

* ``plain``: what one writes without bnnkit. The quantizers are a textbook straight-through
  ``torch.autograd.Function`` (forward ``torch.where(x >= 0, 1, -1)``, backward
  ``g * (|x| <= clip)``: the same values as bnnkit's ``ste_sign``), fed by a
  ``torch.utils.data.DataLoader`` over a per-sample dataset (random crop with padding +
  flip per sample in Python, as a torchvision pipeline does), Adam on every parameter, NCHW.
* ``plain, bnnkit layers``: the same loop on bnnkit's own layers and quantizers, to tell
  the layers' share of the difference from the trainer's.
* ``bnnkit``: the trainer's own step (``bnnkit.train.trainer._Run.train_step``: Bop + Adam
  case optimizer, schedules, weight clips, flip ratio) fed by ``bnnkit.data.BatchLoader``
  (whole-batch augmentation by tensor indexing), with ``--channels-last`` / ``--compile`` /
  ``--bf16``.

Timed end to end (data + forward + backward + update) and step only (one fixed batch), as
the median images/s of ``--repeats`` windows of ``--steps`` steps after 3 warm-up steps.
Run: ``python benchmarks/bench_train.py [--threads 1] [--batch 128] [--repeats 15] [flags]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import torch

SIDES = ("plain", "plain, bnnkit layers", "bnnkit")


def make_model() -> torch.nn.Module:
    from bnnkit.models.quicknet import QuickNet

    torch.manual_seed(0)
    return QuickNet((2, 2), (32, 64), num_classes=10, in_channels=1)


def dataset_name() -> str:
    from bnnkit import data

    try:
        data.load_fashion_mnist("test")
        return "fashion_mnist"
    except data.DatasetNotFoundError:
        return "synthetic"


class TextbookSign(torch.autograd.Function):
    """sign with a clipped straight-through gradient, written as one usually does."""

    @staticmethod
    def forward(ctx, x, clip):
        ctx.save_for_backward(x)
        ctx.clip = clip
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= ctx.clip).to(g.dtype), None


class TextbookSignModule(torch.nn.Module):
    def __init__(self, clip: float):
        super().__init__()
        self.clip = clip

    def forward(self, x):
        return TextbookSign.apply(x, self.clip)


def textbook_model() -> torch.nn.Module:
    """:func:`make_model` with every bnnkit quantizer replaced by :class:`TextbookSign`."""
    from bnnkit.quantizers import SteSign

    model = make_model()
    for module in model.modules():
        for attr in ("input_quantizer", "kernel_quantizer"):
            quantizer = getattr(module, attr, None)
            if quantizer is None:
                continue
            if not isinstance(quantizer, SteSign):
                raise TypeError(f"textbook_model: no textbook form of {quantizer!r}")
            setattr(module, attr, TextbookSignModule(quantizer.clip_value))
    return model


class PerSample(torch.utils.data.Dataset):
    """torchvision-style: one sample at a time, augmented and normalised in Python."""

    def __init__(self, ds, pad: int = 3):
        self.ds, self.pad = ds, pad

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        img = self.ds.images[i].float().div(255)
        img = torch.nn.functional.pad(img, (self.pad,) * 4)
        y0, x0 = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
        h, w = self.ds.images.shape[2:]
        img = img[:, y0:y0 + h, x0:x0 + w]
        if torch.rand(()) < 0.5:
            img = img.flip(2)
        return (img - self.ds.mean[0]) / self.ds.std[0], self.ds.labels[i]


def forever(loader_factory):
    while True:
        yield from loader_factory()


def bnnkit_run(args, tune_malloc: bool):
    from bnnkit.train import TrainConfig
    from bnnkit.train.trainer import _Run

    cfg = TrainConfig(model=make_model(), dataset=dataset_name(), batch_size=args.batch,
                      progress=False, channels_last=args.channels_last, compile=args.compile,
                      bf16=args.bf16, train_subset=20000, tune_malloc=tune_malloc)
    run = _Run(cfg)
    run._enter_phase(2)
    run._wrap()
    run.model.train()
    return run


def setup_side(side: str, args):
    """``(step function, batches for end to end, one fixed batch, description)``."""
    torch.set_num_threads(args.threads)
    if side == "bnnkit":
        run = bnnkit_run(args, tune_malloc=True)
        about = f"bf16 active: {run.bf16}"
        return run.train_step, forever(lambda: run.loader.iterate(0)), next(iter(run.loader)), about
    run = bnnkit_run(args, tune_malloc=False)  # only for its data set; trains nothing
    model = textbook_model() if side == "plain" else make_model()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    loader = lambda: torch.utils.data.DataLoader(PerSample(run.train_ds), batch_size=args.batch,
                                                 shuffle=True, drop_last=True)
    return step, forever(loader), next(iter(run.loader)), "NCHW, eager"


def worker(side: str, args, conn) -> None:
    """Serve ``(mode, steps)`` requests with the seconds they took; ``None`` ends."""
    step, batches, fixed, about = setup_side(side, args)
    for _ in range(3):
        step(*next(batches))
        step(*fixed)
    conn.send(about)
    while (request := conn.recv()) is not None:
        mode, steps = request
        start = time.perf_counter()
        for _ in range(steps):
            step(*(next(batches) if mode == "end-to-end" else fixed))
        conn.send(time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--channels-last", action="store_true", help="bnnkit side: channels-last")
    p.add_argument("--compile", action="store_true", help="bnnkit side: torch.compile the model")
    p.add_argument("--bf16", choices=("off", "on", "auto"), default="off",
                   help="bnnkit side: bf16 autocast (auto: where the CPU has AVX512-BF16/AMX)")
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    pipes, procs = {}, []
    for side in SIDES:
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(side, args, theirs), daemon=True)
        proc.start()
        pipes[side], procs = ours, procs + [proc]
    try:
        about = {side: pipes[side].recv() for side in SIDES}
        rates = {(side, mode): [] for side in SIDES for mode in ("end-to-end", "step only")}
        for mode in ("end-to-end", "step only"):
            for _ in range(args.repeats):
                for side in SIDES:
                    pipes[side].send((mode, args.steps))
                    rates[side, mode].append(args.steps * args.batch / pipes[side].recv())
    finally:
        for side in SIDES:
            pipes[side].send(None)
        for proc in procs:
            proc.join(timeout=30)
    med = {key: statistics.median(v) for key, v in rates.items()}
    print(f"data={dataset_name()} batch={args.batch} threads={args.threads} "
          f"channels_last={args.channels_last} compile={args.compile} bf16={args.bf16} "
          f"({about['bnnkit']}) cpu={torch.backends.cpu.get_cpu_capability()} "
          f"repeats={args.repeats}x{args.steps} steps")
    print(f"{'side':24s} {'end-to-end':>12s} {'step only':>12s}  (images/s, median)")
    for side in SIDES:
        print(f"{side:24s} {med[side, 'end-to-end']:12.1f} {med[side, 'step only']:12.1f}")
    for base in ("plain", "plain, bnnkit layers"):
        print(f"ratio bnnkit / {base}: end-to-end "
              f"{med['bnnkit', 'end-to-end'] / med[base, 'end-to-end']:.2f}x, step only "
              f"{med['bnnkit', 'step only'] / med[base, 'step only']:.2f}x")


if __name__ == "__main__":
    main()
