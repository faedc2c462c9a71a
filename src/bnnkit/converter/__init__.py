"""Convert a trained PyTorch model to one ``.bnn`` file: ``bnnkit.convert(model, x)``.

Steps: check the options and the model (eval mode) -> ``torch.export`` (static shapes)
-> :func:`lower` to the IR (quantizers matched by name, weight quantizers folded) ->
the passes of :data:`PIPELINE`, one per file in ``passes/`` -> :func:`emit` (validated
with the format's reader, written atomically). Anything that cannot be converted
exactly raises :class:`ConversionError` naming the op, the module path and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from .ir import ConversionError, Graph, Op, Value
from .passes import (bit_logic, bits_output, dce, fold_bn_into_binary, fold_bn_into_conv, fold_dprelu_shifts,
                     fuse_activation, fuse_rprelu, splat_vectors)
from .report import size_report, storage_change

__all__ = ["ConversionError", "Graph", "Op", "PIPELINE", "Value", "convert", "convert_graph", "size_report",
           "storage_change"]

# Order matters: logic on bits first (it removes quantize ops that bits_output would look
# at), BN folds into binary layers before activations fuse into their clamps, and bits
# outputs are chosen last (a clamp changes the sign only through out_min/max).
PIPELINE = (
    ("bit_logic", bit_logic.run),
    ("fold_bn_into_binary", fold_bn_into_binary.run),
    ("fuse_activation", fuse_activation.run),
    ("fold_dprelu_shifts", fold_dprelu_shifts.run),
    ("fuse_rprelu", fuse_rprelu.run),
    ("bits_output", bits_output.run),
    ("fold_bn_into_conv", fold_bn_into_conv.run),
    ("splat_vectors", splat_vectors.run),
    ("dce", dce.run),
)
FLOAT_WEIGHTS = ("f32", "f16")


def _check_options(output, float_weights, model_name, optimize) -> None:
    if output is not None and not isinstance(output, (str, os.PathLike)):
        raise TypeError(f"output must be a path (str or os.PathLike) or None, got {type(output).__name__}")
    if output is not None and Path(output).is_dir():
        raise ValueError(f"output {str(output)!r} is a directory; give a file path such as model.bnn")
    if float_weights not in FLOAT_WEIGHTS:
        raise ValueError(f"float_weights must be one of {list(FLOAT_WEIGHTS)}, got {float_weights!r}")
    if model_name is not None and not isinstance(model_name, str):
        raise TypeError(f"model_name must be a str or None, got {model_name!r}")
    if not isinstance(optimize, bool):
        raise TypeError(f"optimize must be a bool, got {optimize!r}")


def _check_model(model, example_input) -> None:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor) or example_input.dtype != torch.float32:
        raise TypeError("example_input must be a float32 torch.Tensor, e.g. torch.randn(1, 3, 224, 224)")
    training = [name or "(the model)" for name, m in model.named_modules() if m.training]
    if training:
        raise ConversionError(
            f"the model is in training mode (modules {', '.join(training[:5])}"
            f"{', ...' if len(training) > 5 else ''}); call model.eval() before converting: "
            "batch norm and dropout behave differently in training mode")


def export(model, example_input):
    """``torch.export.export`` with static shapes; export failures become ConversionError."""
    import torch

    try:
        return torch.export.export(model, (example_input,))
    except Exception as e:  # noqa: BLE001 - torch raises many types; re-raised with context
        raise ConversionError(f"torch.export failed ({type(e).__name__}): {e}") from e


def convert_graph(model, example_input, *, optimize: bool = True) -> Graph:
    """The optimized IR graph of ``model`` (what :func:`convert` writes)."""
    from .lower import lower

    _check_model(model, example_input)
    g = lower(export(model, example_input))
    passes = PIPELINE if optimize else PIPELINE[-1:]
    for _, run in passes:
        g = run(g)
    return g


def convert(model, example_input, *, output=None, float_weights: str = "f32",
            model_name: str | None = None, optimize: bool = True, preprocess=None,
            labels=None):
    """Convert ``model`` (in eval mode) to a ``.bnn`` file.

    Args:
        model: an ``nn.Module`` built from bnnkit layers, in eval mode.
        example_input: a float32 tensor with the input shape (batch included; shapes are
            static).
        output: a file path to write (atomically: no partial file on error), or None.
        float_weights: ``"f32"`` or ``"f16"`` storage of float conv/dense weights.
        model_name: stored as the ``model.name`` metadata (default: the class name).
        optimize: run the passes (False keeps the lowered graph, for debugging).
        preprocess: how raw images become the model's input, stored in the file so a
            deployment with numpy alone can feed it: a :class:`bnnkit.preprocess.Preprocess`
            or a dict ``{"mean": [...], "std": [...], "scale": 1/255}`` (one mean/std per
            input channel). ``bnnkit convert`` fills it in from a ``bnnkit train``
            checkpoint. ``Interpreter.run(raw, preprocess=True)`` applies it.
        labels: class names, one per output of the (N, classes) output, stored as the
            ``model.labels`` metadata (``Interpreter.labels``).

    Returns:
        The file's bytes, or the ``Path`` written when ``output`` is given.

    Raises:
        ConversionError: the model cannot be converted exactly (names the op and module).
    """
    from .emit import emit

    from ..preprocess import Preprocess, labels_metadata

    _check_options(output, float_weights, model_name, optimize)
    prep = Preprocess.coerce(preprocess)
    if prep is not None and (example_input.dim() != 4 or example_input.shape[1] != len(prep.mean)):
        raise ValueError(f"preprocess has {len(prep.mean)} channel statistics but the example input "
                         f"has shape {tuple(example_input.shape)} (N, C, H, W expected)")
    g = convert_graph(model, example_input, optimize=optimize)
    meta = {"model.name": model_name or type(model).__name__}
    meta.update(prep.to_metadata() if prep is not None else {})
    out_shape = g.outputs[0].shape if len(g.outputs) == 1 else ()
    meta.update(labels_metadata(labels, out_shape[-1] if len(out_shape) == 2 else None))
    payload = emit(g, output, metadata=meta, float_weights=float_weights)
    return Path(output) if output is not None else payload
