"""The ``bnnkit`` command: ``bnnkit summary | train | eval | convert | bench | demo``.

Every sub-command is a small function registered in ``_COMMANDS``; user mistakes (a bad
name, a missing file) print one line on stderr and exit 2, without a traceback unless
``--debug`` is given. Heavy imports (torch) happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake the user can fix (bad name, missing file); printed without a traceback."""


def _add_summary(sub) -> None:
    p = sub.add_parser("summary", help="cost analysis of a zoo model: parameters, memory, MACs, ACE, energy")
    p.add_argument("model", help="a zoo model name (see `bnnkit summary --list`)", nargs="?")
    p.add_argument("--input-size", type=int, default=224, help="square input size (default 224)")
    p.add_argument("--num-classes", type=int, default=1000, help="classes of the head (default 1000)")
    p.add_argument("--in-channels", type=int, default=3, help="input channels (default 3)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of the table")
    p.add_argument("--list", action="store_true", help="list the zoo's model names and exit")
    p.set_defaults(func=_cmd_summary)


def _cmd_summary(args) -> int:
    from bnnkit import analysis, models

    if args.list or not args.model:
        print("\n".join(models.list_models()))
        return 0
    profile = analysis.summary_for_model_name(
        args.model, args.input_size, args.num_classes, in_channels=args.in_channels)
    print(profile.to_json() if args.json else profile.render())
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the main job: train a small binary net, summarise, evaluate")
    p.add_argument("--out", default="reports/demo", help="report folder (default reports/demo)")
    p.add_argument("--quick", action="store_true", help="a much shorter run (smoke test)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from bnnkit import demo

    return demo.run(out_dir=args.out, quick=args.quick)


def _add_train(sub) -> None:
    """Every plain field of TrainConfig becomes a flag (``bop_gamma`` -> ``--bop-gamma``)."""
    import dataclasses

    try:
        from bnnkit.train import TrainConfig, config as train_config
    except ImportError as e:  # a deployment install without torch: bench still works
        p = sub.add_parser("train", help="train a zoo model (needs torch: pip install 'bnnkit[train]')")
        p.set_defaults(func=_needs_torch(e))
        return

    p = sub.add_parser(
        "train", help="train a zoo model (Bop + Adam by default); works under torchrun",
        description="Train a zoo model. Under `torchrun --nproc_per_node=N -m bnnkit train ...` "
                    "it runs data-parallel (DDP). Options are the fields of bnnkit.train.TrainConfig.",
        epilog="example: bnnkit train --model quicknet_tiny --epochs 4 --out-dir runs/q "
               "(then `bnnkit eval runs/q/best.pt`, `bnnkit convert runs/q/best.pt -o q.bnn`)")
    choices = {"optimizer": train_config.OPTIMIZERS, "schedule": train_config.SCHEDULES,
               "bf16": train_config.BF16_MODES,
               "bop_decay_applies_to": ("gamma", "threshold", "both")}
    for f in dataclasses.fields(TrainConfig):
        if f.default is dataclasses.MISSING:  # dict/list fields: Python API only
            continue
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        text = _TRAIN_HELP.get(f.name, "")
        text = text if "(default" in text else f"{text} (default: {default})".lstrip()
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                           help=_TRAIN_HELP.get(f.name))
        elif isinstance(default, (int, float, str)) or default is None:
            kind = type(default) if default is not None else _optional_type(f.type)
            p.add_argument(flag, type=kind, default=default, help=text,
                           choices=choices.get(f.name),
                           metavar="on|off" if kind is _on_off else None)
    p.set_defaults(func=_cmd_train)


# One line per flag of `bnnkit train --help`; the full story is TrainConfig's docstring.
_TRAIN_HELP = {
    "model": "zoo model name (`bnnkit summary --list`)",
    "dataset": "fashion_mnist, digits, synthetic, or a path (IDX folder, .npz, image folder)",
    "epochs": "number of epochs",
    "data_dir": "where named data sets are searched first",
    "train_subset": "train on the first N training images only",
    "test_subset": "evaluate on the first N test images only",
    "augment": "random crop + horizontal flip",
    "crop_padding": "random-crop padding in pixels (default: ~size/8)",
    "hflip": "horizontal flips on|off (default: on, off for digits)",
    "optimizer": "bop+adam: Bop on binary weights, Adam on the rest; adam/sgd: latent weights",
    "lr": "learning rate of Adam/SGD",
    "schedule": "lr schedule after the warm-up",
    "warmup_epochs": "linear lr warm-up (may be fractional)",
    "step_every": "schedule=step: epochs between lr decays",
    "bop_gamma": "Bop adaptivity rate (momentum of the gradient average)",
    "bop_threshold": "Bop flip threshold tau",
    "bop_decay_every": "multiply Bop gamma/threshold by --bop-decay-factor every N epochs (0: never)",
    "label_smoothing": "cross-entropy label smoothing",
    "teacher": "distil from a checkpoint path or zoo name",
    "two_step": "ReActNet two-step: binary activations first, then binary weights",
    "device": "auto (CUDA if present), cpu, cuda, cuda:N",
    "bf16": "bf16 autocast (auto: where the CPU/GPU has native bf16)",
    "compile": "torch.compile the model",
    "num_threads": "torch intra-op threads",
    "tune_malloc": "CPU: keep freed memory in the heap between steps (fewer page faults)",
    "out_dir": "folder for checkpoints, metrics.csv/json, curves.png (default: write nothing)",
    "resume": "continue exactly from OUT_DIR/last.pt",
    "save_every_steps": "also checkpoint every N steps (0: at epoch ends only)",
    "max_steps": "stop after N optimizer steps (saves a resumable checkpoint)",
    "progress": "progress bar / lines",
    "plots": "write curves.png (needs matplotlib)",
    "tensorboard": "write TensorBoard scalars (skipped with a note if tensorboard is absent)",
}


def _on_off(text: str) -> bool:
    """``on``/``off`` (also true/false, yes/no, 1/0) for the optional booleans of TrainConfig."""
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def _needs_torch(error: ImportError) -> Callable:
    def fail(args) -> int:
        raise UserError(f"`bnnkit {args.command}` needs PyTorch ({error}); pip install 'bnnkit[train]'")
    return fail


def _optional_type(annotation) -> Callable:
    text = str(annotation)
    return _on_off if "bool" in text else int if "int" in text else float if "float" in text else str


def _cmd_train(args) -> int:
    from bnnkit.train import TrainConfig, train

    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    result = train(TrainConfig(**fields))
    where = f"; checkpoint {result.checkpoint}" if result.checkpoint else ""
    if result.stopped_early:
        print(f"stopped at step {result.global_step} (--max-steps counts every step of the run, "
              f"resumed ones included), {result.epochs_completed} whole epochs{where}")
    if result.test_acc is not None:
        at = f"step {result.global_step}" if result.stopped_early else f"{result.epochs_completed} epochs"
        print(f"test accuracy {100 * result.test_acc:.2f} % after {at}{where}")
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint written by `bnnkit train` on a data set")
    p.add_argument("checkpoint", help="path of a .pt checkpoint (e.g. OUT_DIR/best.pt)")
    p.add_argument("--dataset", help="data set name or path (default: the one it was trained on)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    from bnnkit import data
    from bnnkit.train import checkpoint_meta, evaluate, load_model

    meta = checkpoint_meta(args.checkpoint)
    model = load_model(args.checkpoint)
    dataset = data.load_dataset(args.dataset or meta["dataset"], "test")
    metrics = evaluate(model, dataset, batch_size=args.batch_size)
    print(f"{args.checkpoint}: test accuracy {100 * metrics['acc']:.2f} % "
          f"(loss {metrics['loss']:.4f}, {metrics['count']} images)")
    return 0


def _add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert a checkpoint or zoo model to a .bnn file")
    p.add_argument("source", help="a checkpoint written by `bnnkit train` (.pt) or a zoo model name")
    p.add_argument("-o", "--output", required=True, help="the .bnn file to write (atomically)")
    p.add_argument("--input-size", type=int, help="zoo model: square input size (default 224)")
    p.add_argument("--num-classes", type=int, default=1000, help="zoo model: classes (default 1000)")
    p.add_argument("--in-channels", type=int, default=3, help="zoo model: input channels (default 3)")
    p.add_argument("--float-weights", choices=("f32", "f16"), default="f32",
                   help="storage of the float layers' weights (default f32)")
    p.set_defaults(func=_cmd_convert)


def _load_source(args):
    """(model in eval mode, example input) from a checkpoint path or a zoo name."""
    import os

    import torch

    from bnnkit import models

    if os.path.splitext(args.source)[1] == ".pt" or os.path.exists(args.source):
        from bnnkit.train import checkpoint_meta, load_model

        meta = checkpoint_meta(args.source)
        size, channels = meta["input_size"], meta["in_channels"]
        model, name = load_model(args.source), meta.get("model_name") or "model"
    else:
        size, channels, name = args.input_size or 224, args.in_channels, args.source
        model = models.create(name, num_classes=args.num_classes, input_size=size,
                              in_channels=channels).eval()
    return model.eval(), torch.zeros(1, channels, size, size), name


def _preprocess_of(source: str):
    """(preprocess, labels) a `bnnkit train` checkpoint records of its data set, else (None, None)."""
    import os

    if not (os.path.splitext(source)[1] == ".pt" or os.path.exists(source)):
        return None, None
    from bnnkit.train import checkpoint_meta

    meta = checkpoint_meta(source)
    if "mean" not in meta or "std" not in meta:
        return None, None
    return {"mean": meta["mean"], "std": meta["std"], "scale": 1 / 255}, meta.get("classes")


def _cmd_convert(args) -> int:
    import time

    from bnnkit.converter import convert, size_report

    model, example, name = _load_source(args)
    preprocess, labels = _preprocess_of(args.source)
    start = time.perf_counter()
    path = convert(model, example, output=args.output, float_weights=args.float_weights, model_name=name,
                   preprocess=preprocess, labels=labels)
    report = size_report(model, path)
    print(f"wrote {path}: {report['file_bytes']:,} bytes ({report['ratio']:.1f}x smaller than the "
          f"fp32 state_dict, {report['fp32_bytes']:,} bytes) in {time.perf_counter() - start:.1f} s")
    if args.float_weights != "f32":
        _report_storage_change(model, example, path, name, args.float_weights)
    return 0


def _report_storage_change(model, example, path, name, storage: str) -> None:
    """What the smaller float storage changes, against the f32 file, on seeded inputs."""
    from bnnkit.converter import convert, storage_change

    change = storage_change(convert(model, example, model_name=name), path, tuple(example.shape))
    print(f"{storage} float weights vs f32, {change['samples']} random inputs: "
          f"max |diff| {change['max_abs_diff']:.3g} ({100 * change['max_rel_diff']:.3g}% of the largest "
          f"output), top-1 unchanged for {100 * change['top1_agreement']:.1f}% of them")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="time a .bnn model on the native runtime (median and spread of many runs)")
    p.add_argument("model", help="a .bnn file")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    p.add_argument("--runs", type=int, default=50, help="timed runs after warm-up (default 50)")
    p.add_argument("--profile", action="store_true",
                   help="print the per-op profile of the last run (at the last thread count)")
    p.add_argument("--group", action="store_true", help="with --profile: one line per op type")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    import numpy as np

    from bnnkit import kernels
    from bnnkit.runtime import Interpreter, latency_stats

    if args.runs < 1 or any(t < 1 for t in args.threads):
        raise UserError("--runs and --threads must be >= 1")
    print(f"kernel path {kernels.active_path()}; CPU flags: {kernels.cpu_flags()}")
    for threads in args.threads:
        interp = Interpreter(args.model, num_threads=threads)
        x = np.random.default_rng(0).standard_normal(interp.input_shapes[0]).astype(np.float32)
        st = latency_stats(interp, x, runs=args.runs)
        print(f"{args.model}: {threads} thread(s): median {1e3 * st.median:.3f} ms "
              f"(p10 {1e3 * st.p10:.3f}, p90 {1e3 * st.p90:.3f}) over {st.runs} runs")
    if args.profile:
        entries = interp.profile()
        total = sum(e.micros for e in entries) or 1.0
        print(f"profile of the last run, {threads} thread(s), {total:.1f} us in ops:")
        if args.group:
            by_op: dict = {}
            for e in entries:
                n, us = by_op.get(e.op, (0, 0.0))
                by_op[e.op] = (n + 1, us + e.micros)
            print(f"{'op':<16} {'nodes':>5} {'us':>9} {'share':>6}")
            for op, (n, us) in sorted(by_op.items(), key=lambda kv: -kv[1][1]):
                print(f"{op:<16} {n:5d} {us:9.1f} {100 * us / total:5.1f}%")
        else:
            print(f"{'op':<14} {'node':<32} {'kernel':<28} {'us':>9} {'share':>6}")
            for e in sorted(entries, key=lambda e: -e.micros):
                print(f"{e.op:<14} {e.node[:32]:<32} {e.kernel[:28]:<28} {e.micros:9.1f} "
                      f"{100 * e.micros / total:5.1f}%")
    return 0


_COMMANDS: tuple[Callable, ...] = (_add_summary, _add_train, _add_eval, _add_convert, _add_bench, _add_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bnnkit",
        description="Train, analyse and deploy binarized neural networks.",
        epilog="Run `bnnkit COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's to fix: printed as one line, no traceback."""
    errors: list[type[BaseException]] = [UserError, FileNotFoundError, KeyError, ValueError]
    try:
        from bnnkit.train import CheckpointError
    except ImportError:  # training extra (torch) not installed
        pass
    else:
        errors.append(CheckpointError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_errors() as e:
        if args.debug:
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"bnnkit {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"bnnkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
