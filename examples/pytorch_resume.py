"""A PyTorch training loop of your own, driven through the SARA callback manager, that resumes exactly.

A small MLP learns a noisy function of 4 inputs from generated data. The loop calls the manager's hooks by hand,
with the documented context, and follows the state snapshot rule (see the documentation's "Resume and preemption"):

* the callbacks' state is gathered inside ``save_checkpoint`` (which the ``checkpoint`` callback calls after every
  other callback ended the epoch), and saved in the torch checkpoint with the model and the optimizer;
* after every epoch (every callback's ``on_epoch_end`` done) the loop writes ``last.pt`` the same way, atomically:
  the resume point, the last completed epoch;
* SIGTERM (what SLURM and Kubernetes send before a kill) is a stop request: the current batch finishes, the partial
  epoch is dropped, ``on_train_end`` runs, and the process exits with status 143 saying how to resume.

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
from altametris.sara.core import CallbackManager, TrainingControl
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
PREEMPTED = "SIGTERM"  # the source of a preemption's stop request: not saved as the training's own stop


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


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one training loop, written out as a user would
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

    manager = CallbackManager.from_config(CONFIG)
    control = TrainingControl()
    start_epoch = 0
    if args.resume:
        for stale in output.glob(".last.pt.*.tmp"):  # a run killed while it saved last.pt
            stale.unlink()
        saved = torch.load(last, weights_only=True)  # plain data and tensors only
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        manager.load_state_dict(saved["callbacks"])
        start_epoch = saved["epoch"] + 1
        if saved["stop"] is not None:  # the training had ended (early stopping): it ends again at once
            control.request_stop(saved["stop"]["reason"], source=saved["stop"]["source"])
        print(f"resuming {output} at epoch {start_epoch}")

    def snapshot(epoch: int) -> dict[str, Any]:
        """Everything a resume needs, as of the end of ``epoch``; the callbacks' part from ``manager.state_dict()``."""
        stops = [request for request in control.requests if request.source != PREEMPTED]
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "callbacks": manager.state_dict(),
            "stop": {"reason": stops[0].reason, "source": stops[0].source} if stops else None,
        }

    epoch_now = start_epoch

    def save_checkpoint(path: str) -> None:
        torch.save(snapshot(epoch_now), path)  # the checkpoint callback renames it to its final name

    def preempt(signum: int, frame: object) -> None:
        control.request_stop("preempted: SIGTERM received", source=PREEMPTED)

    previous = signal.signal(signal.SIGTERM, preempt)
    context: dict[str, Any] = {
        "model": model,
        "epochs": EPOCHS,
        "config": CONFIG,
        "control": control,
        "save_checkpoint": save_checkpoint,
        "output_dir": output,
        "num_batches": (len(train_x) + BATCH_SIZE - 1) // BATCH_SIZE,
    }
    metrics: dict[str, float] = {}
    try:
        manager.on_train_start(**context)
        for epoch in range(start_epoch, EPOCHS):
            if control.should_stop:
                break
            epoch_now = epoch
            manager.on_epoch_start(epoch, **context)
            model.train()
            order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(epoch))  # the epoch's own
            total, count = 0.0, 0
            for batch, indices in enumerate(order.split(BATCH_SIZE)):
                if control.stop_source == PREEMPTED:  # the resume point is the last completed epoch
                    break
                batch_data = (train_x[indices], train_y[indices])
                manager.on_batch_start(batch, batch_data=batch_data, **context)
                optimizer.zero_grad()
                loss = loss_function(model(batch_data[0]), batch_data[1])
                loss.backward()
                optimizer.step()
                total, count = total + loss.item() * len(indices), count + len(indices)
                manager.on_batch_end(batch, {"loss": loss.item()}, batch_data=batch_data, **context)
                if args.kill_at == [epoch, batch]:
                    os.kill(os.getpid(), signal.SIGKILL)
            else:
                manager.on_validation_start(**context)
                model.eval()
                with torch.no_grad():
                    validation = {"val_loss": loss_function(model(val_x), val_y).item()}
                manager.on_validation_end(validation, **context)
                metrics = {"loss": total / count, **validation}
                manager.on_epoch_end(epoch, metrics, **context)
                save(last, snapshot(epoch))  # every callback ended the epoch: the resume point
                continue
            break  # preempted in the middle of an epoch
        best = next(
            (callback.best_model_path for callback in manager.callbacks if hasattr(callback, "best_model_path")), None
        )
        manager.on_train_end(metrics=metrics, **({"model_path": best} if best is not None else {}), **context)
    except BaseException as error:
        manager.on_exception(error, **context)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if control.stop_source == PREEMPTED:
        print(f"preempted; resume with: python {sys.argv[0]} --output {output} --resume", file=sys.stderr)
        return 143
    print(f"done: {control.stop_reason or 'all epochs'}; best model {best}; last metrics {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
