"""Worker for tests/test_ddp.py: ``torchrun --nproc_per_node=2 ddp_train_script.py OUT``.

Trains the tiny QuickNet-style net on the synthetic data with DDP (gloo), then each rank
saves its final parameters to ``OUT/rank<r>.pt`` so the test can compare them.
"""

import gc
import os
import sys

import torch

from bnnkit.models.quicknet import QuickNet
from bnnkit.train import TrainConfig, train


def main(out: str) -> None:
    gc.disable()  # so that what train() leaves in reference cycles stays visible below
    torch.manual_seed(1234 + int(os.environ["RANK"]))  # different inits: DDP must sync them
    model = QuickNet((1, 1), (8, 16), num_classes=4, in_channels=1)
    result = train(TrainConfig(model=model, dataset="synthetic", epochs=2, batch_size=32,
                               out_dir=out, progress=False, plots=False, lr=1e-2,
                               bop_gamma=1e-3, bop_threshold=1e-6, num_threads=1,
                               augment=False))
    state = {k: v for k, v in result.model.state_dict().items()}
    # train() must not leave its DDP wrapper for interpreter shutdown (after the process
    # group is destroyed), where gloo can abort the process.
    ddp_left = sum(isinstance(o, torch.nn.parallel.DistributedDataParallel) for o in gc.get_objects())
    torch.save({"state": state, "steps": result.global_step, "test_acc": result.test_acc,
                "ddp_left": ddp_left},
               os.path.join(out, f"rank{os.environ['RANK']}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
