"""A PyTorch training loop of your own, driven through SARA's ``TrainingRun``, that resumes exactly.

A small MLP learns a noisy function of 4 inputs from generated data. The loop is the user's (model, data, optimizer,
checkpoint files); :class:`~altametris.sara.core.training_run.TrainingRun` calls the hooks with the documented
context and keeps what a resume needs:

* ``run.state()`` (the callbacks' state, the epoch done, the stops asked) goes into every torch checkpoint, with the
  model and the optimizer: inside ``save_checkpoint`` (which the ``checkpoint`` callback calls after every other
  callback ended the epoch) and in ``last.pt``, written atomically after every epoch, the resume point;
* ``TrainingRun(..., state=saved["sara"])`` gives it back: the callbacks continue, a stop asked (early stopping)
  ends the resumed run at once, ``global_step`` goes on;
* SIGTERM (what SLURM and Kubernetes send before a kill) is a stop request: the current batch finishes, the partial
  epoch is dropped, ``on_train_end`` runs, and the process exits with status 143.

Run it (``pip install sara-callbacks torch``)::

    python examples/pytorch_resume.py --output runs/mlp
    python examples/pytorch_resume.py --output runs/mlp --resume     # after a kill, a preemption, Ctrl-C

``--kill-at EPOCH BATCH`` kills the process (SIGKILL, no cleanup) at that batch, to try the resume.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
from typing import Any

import torch
from altametris.sara.core import CallbackManager, TrainingRun
from altametris.sara.core.control import Preempted
from torch import nn

CONFIG: dict[str, Any] = {
    "callbacks": [
        "timer",
        {"name": "csv_logger", "params": {"path": "metrics.csv"}},
        {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 3, "min_delta": 0.0005}},
        {
            "name": "checkpoint",
            "params": {
                "dirpath": "checkpoints",
                "monitor": "val_loss",
                "save_top_k": 2,
                "filename": "epoch{epoch:03d}.pt",
            },
        },
    ]
}
EPOCHS = 40
BATCH_SIZE = 32


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs and targets ``y = sin(x . w) + noise``, split 80/20 into training and validation."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(640, 4, generator=generator)
    weights = torch.tensor([1.5, -2.0, 0.5, 1.0])
    targets = torch.sin(inputs @ weights).unsqueeze(1) + 0.1 * torch.randn(640, 1, generator=generator)
    return inputs[:512], targets[:512], inputs[512:], targets[512:]


def save(path: pathlib.Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary sibling and :func:`os.replace`: the file is complete, or the previous one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="the run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run of --output from its last.pt")
    parser.add_argument("--kill-at", nargs=2, type=int, metavar=("EPOCH", "BATCH"), help="SIGKILL at that batch")
    args = parser.parse_args(argv)
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    last = output / "last.pt"

    torch.set_num_threads(1)  # the same sums in the same order: a resumed run computes what an uninterrupted one does
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_function = nn.MSELoss()
    train_x, train_y, val_x, val_y = make_data()

    saved: dict[str, Any] | None = None
    if args.resume:
        for stale in output.glob(".last.pt.*.tmp"):  # a run killed while it saved last.pt
            stale.unlink()
        saved = torch.load(last, weights_only=True)  # plain data and tensors only
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        print(f"resuming {output} at epoch {saved['epoch'] + 1}")

    def checkpoint_of(run: TrainingRun) -> dict[str, Any]:
        state = run.state()  # the callbacks' part, as of the epoch that ends
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": state["epoch"],
            "sara": state,
        }

    manager = CallbackManager.from_config(CONFIG)
    try:
        with TrainingRun(
            manager,
            epochs=EPOCHS,
            model=model,
            state=None if saved is None else saved["sara"],
            resumed_from=None if saved is None else str(last),
            save_checkpoint=lambda path: torch.save(checkpoint_of(run), path),  # the callback renames it when complete
            output_dir=output,
            num_batches=(len(train_x) + BATCH_SIZE - 1) // BATCH_SIZE,
            config=CONFIG,
        ) as run:
            for epoch in run.epochs():
                model.train()
                order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(epoch))  # the epoch's own
                for batch, indices in run.batches(order.split(BATCH_SIZE)):
                    optimizer.zero_grad()
                    loss = loss_function(model(train_x[indices]), train_y[indices])
                    loss.backward()
                    run.after_backward()
                    run.before_optimizer_step(optimizer)
                    optimizer.step()
                    run.after_optimizer_step()
                    run.batch_end({"loss": loss.item()})  # equal batches: their mean is the epoch's
                    if args.kill_at == [epoch, batch]:
                        os.kill(os.getpid(), signal.SIGKILL)
                run.validation_start()
                model.eval()
                with torch.no_grad():
                    run.validation_end({"val_loss": loss_function(model(val_x), val_y).item()})
                run.epoch_end()
                save(last, checkpoint_of(run))  # every callback ended the epoch: the resume point
                run.checkpoint_saved(last)
    except Preempted:  # SIGTERM: the training ended cleanly, last.pt is the resume point
        print(f"preempted; resume with: python {sys.argv[0]} --output {output} --resume", file=sys.stderr)
        return 143
    best = next((c.best_model_path for c in manager.callbacks if hasattr(c, "best_model_path")), None)
    print(f"done: {run.control.stop_reason or 'all epochs'}; best model {best}; last metrics {run.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
