"""Bop vs Adam on latent weights, scaled to a small CPU (Helwegen et al. 2019, arXiv 1906.02107).

The paper trains BinaryNet on CIFAR-10 for 500 epochs (batch 50) and reports 91.3 % with Bop
(gamma 1e-4 decayed x0.1 every 100 epochs, threshold 1e-8) against 90.9 % with Adam on
latent weights. This script runs the same comparison at a size one CPU core can finish in
under 25 minutes (the defaults: 11 runs, ~18 minutes on one core of the shared 2-core
development machine):

* the same model for both optimizers: BinaryNet's layout (6 binary 3x3 convs, 3 binary
  dense layers, batch norm without scale after each, the first conv on the real image),
  built from the zoo's own blocks with its widths multiplied by ``--width`` (1.0 is
  ``bnnkit.models.create("binarynet_cifar")``: 128-128-256-256-512-512 filters, 1024 units);
* the same data: no Debian or PyPI package found here ships CIFAR-10 itself (only
  download helpers), so this runs on Fashion-MNIST (Debian's ``dataset-fashion-mnist``; the first ``--train-subset`` training
  images, the whole 10k test set), with the trainer's random crop + flip augmentation;
* the same epochs, batch size, seeds (model initialisation and data order) and Adam
  learning-rate schedule (cosine) for both; with Bop, Bop trains the binary kernels and
  that Adam the batch-norm offsets (the paper's case optimizer); ``adam`` trains every
  parameter, the binary kernels as latent real weights clipped to [-1, 1];
* Bop's gamma is decayed x0.1 every ``--bop-decay-every`` epochs (the paper's schedule,
  compressed), and a small sweep of (gamma, threshold) runs on the first seed.

Every number printed comes from this run. Run (pinned to one core on a shared machine)::

    taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bop_vs_adam.py --threads 1

``--quick`` is a smoke test of the script itself (tiny runs on synthetic data).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from bnnkit.models import _blocks
from bnnkit.train import TrainConfig, train

LAYOUT = ((128, False), (128, True), (256, False), (256, True), (512, False), (512, True))
DENSE_UNITS = 1024


def _bn(channels: int, dims: int = 2) -> nn.Module:
    return _blocks.batch_norm(channels, keras_momentum=0.99, eps=1e-3, scale=False, dims=dims)


def binarynet(width: float = 1.0, *, in_channels: int = 1, input_size: int = 28,
              num_classes: int = 10) -> nn.Sequential:
    """BinaryNet (as in ``bnnkit.models.binarynet``) with every width times ``width``."""
    layers: list[nn.Module] = []
    size, channels = input_size - 2, in_channels  # the first conv is 'valid'
    for i, (filters, pool) in enumerate(LAYOUT):
        out = max(1, round(filters * width))
        layers.append(_blocks.larq_binary_conv(channels, out, 3, padding=0 if i == 0 else 1,
                                               first=i == 0))
        if pool:
            layers.append(nn.MaxPool2d(2, stride=2))
            size //= 2
        layers.append(_bn(out))
        channels = out
    units = max(1, round(DENSE_UNITS * width))
    layers += [nn.Flatten(),
               _blocks.larq_binary_dense(channels * size * size, units), _bn(units, 1),
               _blocks.larq_binary_dense(units, units), _bn(units, 1),
               _blocks.larq_binary_dense(units, num_classes), _bn(num_classes, 1)]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Setting:
    """One optimizer setting of the comparison."""

    optimizer: str  # "bop+adam" or "adam"
    lr: float
    gamma: float = 0.0
    threshold: float = 0.0

    @property
    def label(self) -> str:
        if self.optimizer == "adam":
            return f"Adam (latent weights), lr {self.lr:g}"
        return f"Bop gamma {self.gamma:g}, threshold {self.threshold:g} (+ Adam lr {self.lr:g})"


def run_one(setting: Setting, seed: int, args) -> dict:
    """Train one (setting, seed); returns its final/best test accuracy and history."""
    torch.manual_seed(seed)
    model = binarynet(args.width, in_channels=1, input_size=args.input_size)
    config = TrainConfig(
        model=model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        train_subset=args.train_subset, test_subset=args.test_subset,
        optimizer=setting.optimizer, lr=setting.lr, schedule="cosine",
        bop_gamma=setting.gamma or 1e-4, bop_threshold=setting.threshold,
        bop_decay_every=args.bop_decay_every, bop_decay_factor=0.1,
        seed=seed, num_threads=args.threads, progress=False, plots=False)
    start = time.perf_counter()
    result = train(config)
    accs = [h["test_acc"] for h in result.history]
    return {"setting": setting.label, "optimizer": setting.optimizer, "lr": setting.lr,
            "gamma": setting.gamma, "threshold": setting.threshold, "seed": seed,
            "final_test_acc": accs[-1], "best_test_acc": max(accs),
            "final_train_acc": result.history[-1]["train_acc"],
            "seconds": time.perf_counter() - start, "history": result.history}


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def table(runs: list[dict]) -> list[str]:
    """Markdown rows: one per setting, accuracies over its seeds (mean +- sample std)."""
    lines = ["| setting | seeds | final test acc (mean +- std) | min - max | best-epoch test acc | "
             "final train acc | s/run |", "|---|---|---|---|---|---|---|"]
    for label in dict.fromkeys(r["setting"] for r in runs):
        rows = [r for r in runs if r["setting"] == label]
        final = [100 * r["final_test_acc"] for r in rows]
        mean, std = _stats(final)
        best, train_acc = _stats([100 * r["best_test_acc"] for r in rows]), \
            _stats([100 * r["final_train_acc"] for r in rows])
        seeds = ",".join(str(r["seed"]) for r in rows)
        lines.append(f"| {label} | {seeds} | {mean:.2f} +- {std:.2f} % | {min(final):.2f} - "
                     f"{max(final):.2f} % | {best[0]:.2f} % | {train_acc[0]:.2f} % | "
                     f"{statistics.mean(r['seconds'] for r in rows):.0f} |")
    return lines


def _pairs(text: str) -> list[tuple[float, float]]:
    """``"1e-4:1e-8,1e-2:1e-6"`` -> [(1e-4, 1e-8), (1e-2, 1e-6)] as (gamma, threshold)."""
    return [tuple(float(v) for v in item.split(":")) for item in text.split(",") if item]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8, help="epochs per run, both optimizers")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--width", type=float, default=0.125, help="BinaryNet width multiplier")
    p.add_argument("--batch-size", type=int, default=50, help="the paper's batch size")
    p.add_argument("--train-subset", type=int, default=10000)
    p.add_argument("--test-subset", type=int, default=None, help="default: the whole test set")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam lr (latent weights / BN offsets)")
    p.add_argument("--gamma", type=float, default=1e-3, help="Bop's gamma for the seed runs")
    p.add_argument("--threshold", type=float, default=1e-6, help="Bop's threshold for the seed runs")
    p.add_argument("--bop-decay-every", type=int, default=4, help="gamma x0.1 every N epochs")
    p.add_argument("--sweep", type=_pairs, default=_pairs("1e-4:1e-8,1e-3:1e-8,1e-2:1e-6,1e-3:1e-5"),
                   help="extra gamma:threshold pairs for Bop, first seed only")
    p.add_argument("--adam-lrs", type=float, nargs="*", default=[3e-3],
                   help="extra Adam learning rates, first seed only (fairness check)")
    p.add_argument("--per-seed", choices=("both", "bop", "adam"), default="both",
                   help="which optimizer the per-seed runs use (e.g. more seeds of one setting)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--input-size", type=int, default=28)
    p.add_argument("--out", default=None, help="write every run's numbers and history as JSON")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny runs on synthetic data")
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.input_size, args.epochs, args.width = "synthetic", 16, 2, 0.125
        args.train_subset, args.seeds, args.bop_decay_every = None, args.seeds[:2], 1
        args.sweep, args.adam_lrs = args.sweep[:1], args.adam_lrs[:1]
    return args


def settings(args) -> tuple[list[Setting], list[Setting]]:
    """(the two settings run on every seed, the sweep run on the first seed)."""
    main = [Setting("bop+adam", args.lr, args.gamma, args.threshold), Setting("adam", args.lr)]
    main = {"both": main, "bop": main[:1], "adam": main[1:]}[args.per_seed]
    sweep = [Setting("bop+adam", args.lr, g, t) for g, t in args.sweep]
    return main, sweep + [Setting("adam", lr) for lr in args.adam_lrs]


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    main_settings, sweep = settings(args)
    n_params = sum(p.numel() for p in binarynet(args.width, input_size=args.input_size).parameters())
    print(f"BinaryNet x{args.width:g} ({n_params:,} parameters) on {args.dataset}, "
          f"{args.epochs} epochs, batch {args.batch_size}, train subset {args.train_subset}, "
          f"seeds {args.seeds}, {args.threads} thread(s), torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}", flush=True)
    jobs = [(s, seed) for seed in args.seeds for s in main_settings]
    jobs += [(s, args.seeds[0]) for s in sweep]
    runs, start = [], time.perf_counter()
    for i, (setting, seed) in enumerate(jobs, 1):
        run = run_one(setting, seed, args)
        runs.append(run)
        print(f"[{i}/{len(jobs)}] {setting.label}, seed {seed}: final test "
              f"{100 * run['final_test_acc']:.2f} %, best {100 * run['best_test_acc']:.2f} %, "
              f"{run['seconds']:.0f} s", flush=True)
    print(f"\ntotal {time.perf_counter() - start:.0f} s\n")
    print("\n".join(table(runs)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()}, "runs": runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
