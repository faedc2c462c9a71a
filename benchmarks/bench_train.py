"""Training throughput: bnnkit's trainer vs a straightforward PyTorch loop, side by side.

Same process, same QuickNet-style model (float stem, binary 3x3 blocks, float transitions
and head), same batch size and data (Fashion-MNIST if installed, else synthetic 28x28).

* ``plain``: a ``torch.utils.data.DataLoader`` over a per-sample dataset (random crop with
  padding + flip per sample in Python, as a torchvision pipeline does), Adam on every
  parameter, NCHW.
* ``bnnkit``: the trainer's own step (``bnnkit.train.trainer._Run.train_step``: Bop + Adam
  case optimizer, schedules, weight clips, flip ratio) fed by ``bnnkit.data.BatchLoader``
  (whole-batch augmentation by tensor indexing), with ``--channels-last`` / ``--compile``.

Both are timed end to end (data + forward + backward + update) and step only (one fixed
batch), as the median images/s of ``--repeats`` windows of ``--steps`` steps after warm-up, the
windows of the two sides taking turns. Run:
``python benchmarks/bench_train.py [--threads 2] [--batch 128] [--channels-last] [--compile] [--bf16 on]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bnnkit import data
from bnnkit.models.quicknet import QuickNet
from bnnkit.train import TrainConfig
from bnnkit.train.trainer import _Run


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return QuickNet((2, 2), (32, 64), num_classes=10, in_channels=1)


def dataset_name() -> str:
    try:
        data.load_fashion_mnist("test")
        return "fashion_mnist"
    except data.DatasetNotFoundError:
        return "synthetic"


class PerSample(torch.utils.data.Dataset):
    """torchvision-style: one sample at a time, augmented and normalised in Python."""

    def __init__(self, ds: data.ArrayDataset, pad: int = 3):
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


def interleaved_rates(candidates: dict, batch_size: int, steps: int, repeats: int) -> dict:
    """Median images/s of each candidate over ``repeats`` windows of ``steps`` steps.

    ``candidates``: name -> (step function, iterator of batches). After 3 warm-up steps
    each, the windows take turns (A B C D, A B C D, ...), so on a shared, noisy machine
    every candidate sees the same load (DESIGN.md, "Performance protocol").
    """
    iters = {name: iter(batches) for name, (_, batches) in candidates.items()}
    for name, (step, _) in candidates.items():
        for _ in range(3):
            step(*next(iters[name]))
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, (step, _) in candidates.items():
            t = time.perf_counter()
            for _ in range(steps):
                step(*next(iters[name]))
            rates[name].append(steps * batch_size / (time.perf_counter() - t))
    return {name: statistics.median(r) for name, r in rates.items()}


def forever(loader_factory):
    while True:
        yield from loader_factory()


def plain_setup(ds, batch):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    loader = lambda: torch.utils.data.DataLoader(PerSample(ds), batch_size=batch, shuffle=True,
                                                 drop_last=True)
    return step, loader


def bnnkit_setup(name, batch, channels_last, compile_, bf16="off"):
    cfg = TrainConfig(model=make_model(), dataset=name, batch_size=batch, progress=False,
                      channels_last=channels_last, compile=compile_, bf16=bf16,
                      train_subset=20000)
    run = _Run(cfg)
    run._enter_phase(2)
    run._wrap()
    run.model.train()
    return run, (lambda: run.loader.iterate(0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--bf16", choices=("off", "on", "auto"), default="off",
                   help="bnnkit side: bf16 autocast (auto: where the CPU has AVX512-BF16/AMX)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    name = dataset_name()
    run, bk_loader = bnnkit_setup(name, args.batch, args.channels_last, args.compile, args.bf16)
    plain_step, plain_loader = plain_setup(run.train_ds, args.batch)
    fixed = next(iter(run.loader))
    n = args.batch
    end_to_end = interleaved_rates({"plain end-to-end": (plain_step, forever(plain_loader)),
                                    "bnnkit end-to-end": (run.train_step, forever(bk_loader))},
                                   n, args.steps, args.repeats)
    step_only = interleaved_rates({"plain step only": (plain_step, iter(lambda: fixed, None)),
                                   "bnnkit step only": (run.train_step, iter(lambda: fixed, None))},
                                  n, args.steps, args.repeats)
    results = {**end_to_end, **step_only}
    print(f"data={name} batch={n} threads={args.threads} channels_last={args.channels_last} "
          f"compile={args.compile} bf16={args.bf16} (active: {run.bf16}) "
          f"cpu={torch.backends.cpu.get_cpu_capability()}")
    for key, value in results.items():
        print(f"{key:20s} {value:9.1f} images/s")
    print(f"ratio end-to-end bnnkit/plain: {results['bnnkit end-to-end'] / results['plain end-to-end']:.2f}x; "
          f"step only: {results['bnnkit step only'] / results['plain step only']:.2f}x")


if __name__ == "__main__":
    main()
