"""Two real processes under ``torchrun`` (gloo, CPU) for the Lightning (``strategy="ddp"``) and Hugging Face bridges.

A stop asked on rank 1 only must stop both ranks at the same epoch, without a hang; only rank 0 writes files. Runs
in tox env ``bridges`` (``SARA_REQUIRE_BRIDGES=1`` turns a missing framework into a failure), skipped elsewhere when
a framework is missing.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from _helpers import csv_rows, torchrun

if TYPE_CHECKING:
    from pathlib import Path

if os.environ.get("SARA_REQUIRE_BRIDGES") != "1":
    pytest.importorskip("torch")

COMMON = """\
import json, os, sys, warnings
warnings.simplefilter("ignore")
from altametris.sara.core import CallbackManager
from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.control import stop_training

out = sys.argv[1]
rank = int(os.environ["RANK"])


class StopOnRankOne(BaseCallback):
    '''Asks for a stop at the end of epoch 1, on rank 1 only.'''

    def on_epoch_end(self, epoch, metrics, **kwargs):
        if rank == 1 and epoch == 1:
            stop_training(kwargs.get("control"), "rank 1 had enough", source="stop_on_rank_one")


def manager():
    built = CallbackManager.from_config(
        {"callbacks": [{"name": "csv_logger", "params": {"path": out + "/metrics.csv"}}, "history"]}
    )
    built.add_callback(StopOnRankOne())
    return built


def report(callback):
    import torch.distributed as dist

    csv_logger, history = callback.manager.callbacks[:2]
    with open(f"{out}/report-{rank}.json", "w") as file:  # not stdout: two ranks' lines may interleave there
        json.dump({
            "rank": rank,
            "epochs": history.epochs,
            "stop_reason": callback.control.stop_reason,
            "csv_opened": csv_logger.file_path is not None,
        }, file)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
"""

LIGHTNING = (
    COMMON
    + """
import logging
import torch
import lightning.pytorch as pl
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, TensorDataset
from altametris.sara.integrations.lightning import SaraCallback

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


class MLP(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
callback = SaraCallback(manager())
trainer = pl.Trainer(
    max_epochs=6, accelerator="cpu", devices=2, strategy=DDPStrategy(process_group_backend="gloo"),
    callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False,
    enable_model_summary=False, default_root_dir=out,
)
trainer.fit(MLP(), data, data)
report(callback)
"""
)

TRANSFORMERS = (
    COMMON
    + """
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging
from altametris.sara.integrations.transformers import SaraCallback

hf_logging.set_verbosity_error()


class Tokens(torch.utils.data.Dataset):
    def __init__(self, size):
        self.ids = torch.randint(0, 50, (size, 8), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        ids = self.ids[index]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": (ids[0] >= 25).long()}


torch.manual_seed(0)
config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                    max_position_embeddings=16, num_labels=2)
args = TrainingArguments(output_dir=out, num_train_epochs=6, per_device_train_batch_size=8, eval_strategy="epoch",
                         save_strategy="no", logging_steps=1, report_to=[], use_cpu=True, ddp_backend="gloo",
                         disable_tqdm=True, log_level="error")
callback = SaraCallback(manager())
trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=Tokens(32),
                  eval_dataset=Tokens(16), callbacks=[callback])
with callback.guard():
    trainer.train()
report(callback)
"""
)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["lightning", "transformers"])
def test_a_stop_on_rank_one_stops_both_ranks_at_the_same_epoch_and_only_rank_zero_writes(
    tmp_path: Path, framework: str
) -> None:
    if os.environ.get("SARA_REQUIRE_BRIDGES") != "1":
        pytest.importorskip(framework)
    script = tmp_path / "train.py"
    script.write_text(LIGHTNING if framework == "lightning" else TRANSFORMERS)
    result = torchrun(script, str(tmp_path), timeout=240, PYTHONWARNINGS="ignore")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"report-{rank}.json").read_text()) for rank in (0, 1)]
    assert [report["rank"] for report in reports] == [0, 1]
    assert [report["epochs"] for report in reports] == [[0, 1], [0, 1]]  # both stopped after epoch 1
    assert reports[1]["stop_reason"] == "rank 1 had enough"
    assert reports[0]["stop_reason"] == "rank 1: rank 1 had enough"
    assert [report["csv_opened"] for report in reports] == [True, False]
    assert [row["epoch"] for row in csv_rows(tmp_path / "metrics.csv")] == ["0", "1"]
