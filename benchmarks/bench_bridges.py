"""Per training batch: a SARA plugin run through each bridge against the same logic as the framework's native callback.

The logic is a metrics recorder with an early-stopping rule: every batch's loss is kept as a float, and every epoch's
mean is compared with the best so far. Written once as a SARA plugin (run through ``SaraCallback``) and once as the
framework's own callback. Two measures per framework, contenders interleaved in rounds:

* training: the wall time per batch of a real tiny training (the median time from one batch's start to the next,
  after a warm-up; the best of several trainings), with no callback, with the native callback, and with the bridge;
  the target is the bridge at most 1.1x the native callback;
* hooks: the framework callback's per-batch methods called directly with what the framework passes (a loss tensor),
  native against bridge: what the bridge adds, for scale (no target: it is a few microseconds against milliseconds).

Needs torch, lightning, transformers (+ accelerate) and keras: ``tox -e bench-bridges``.
"""

from __future__ import annotations

import os
import statistics
import time
import timeit
from typing import Any, Callable

from altametris.sara.core.base_callback import BaseCallback, CallbackManager

from ._harness import Budget, Case, Samples, Target

TARGET = 1.1


class Recorder(BaseCallback):
    """The SARA plugin: keeps every batch's loss; at each epoch's end, the mean against the best so far."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.best = float("inf")
        self.wait = 0

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.losses.append(metrics["loss"])

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        if metrics["loss"] < self.best:
            self.best, self.wait = metrics["loss"], 0
        else:
            self.wait += 1


class _Same:
    """The native callbacks' shared logic, the same as :class:`Recorder`'s."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.epoch: list[float] = []
        self.best = float("inf")
        self.wait = 0

    def batch(self, loss: Any) -> None:
        value = float(loss)
        self.losses.append(value)
        self.epoch.append(value)

    def epoch_end(self) -> None:
        mean = sum(self.epoch) / max(1, len(self.epoch))
        self.epoch = []
        if mean < self.best:
            self.best, self.wait = mean, 0
        else:
            self.wait += 1


def _per_batch(train: Callable[[Any], float], contenders: dict[str, Callable[[], Any]], rounds: int) -> Samples:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for make in contenders.values():  # warm-up: imports, first-call compilation
        train(make())
    for _ in range(rounds):
        for name, make in contenders.items():
            samples[name].append(train(make()))
    return samples


class _Clock:
    """The median time from one batch's start to the next one's (the step and every callback's batch hooks).

    A median over the batches after ``skip`` (warm-up) is not moved by a burst of another process on the machine,
    which a mean over the epoch would be.
    """

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.starts: list[float] = []

    def begin(self, batch: int) -> None:
        self.starts.append(time.perf_counter())

    def finish(self, batch: int) -> None:
        """Nothing: the next batch's start closes this one."""

    @property
    def per_batch(self) -> float:
        starts = self.starts[self.skip :]
        return statistics.median(later - earlier for earlier, later in zip(starts, starts[1:]))


# -- Lightning ---------------------------------------------------------------------------------------------------


def _lightning(batches: int, rounds: int) -> tuple[Samples, Samples]:
    import logging
    import warnings

    import lightning.pytorch as pl
    import torch
    from altametris.sara.integrations.lightning import SaraCallback
    from torch.utils.data import DataLoader, TensorDataset

    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    class Native(pl.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.same = _Same()

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, index: int) -> None:
            self.same.batch(outputs["loss"])

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.same.epoch_end()

    class Timed(pl.Callback):  # type: ignore[misc]
        def __init__(self, clock: _Clock) -> None:
            self.clock = clock

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, index: int) -> None:
            self.clock.begin(index)

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, index: int) -> None:
            self.clock.finish(index)

    class MLP(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

        def training_step(self, batch: Any, index: int) -> Any:
            return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x = torch.randn(batches * 4, 4, generator=torch.Generator().manual_seed(0))
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)

    def train(callback: Any) -> float:
        clock = _Clock(skip=10)
        trainer = pl.Trainer(
            max_epochs=1, callbacks=[Timed(clock), *([callback] if callback else [])], logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
        )  # fmt: skip
        trainer.fit(MLP(), data)
        return clock.per_batch

    training = _per_batch(
        train,
        {
            "no callback": lambda: None,
            "native callback": Native,
            "SARA bridge": lambda: SaraCallback(CallbackManager([Recorder()])),
        },
        rounds,
    )
    native, bridge = Native(), SaraCallback(CallbackManager([Recorder()]))
    bridge._bridge.start()
    bridge._bridge.epoch_start(0)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    outputs = {"loss": torch.tensor(0.5)}
    hooks = interleaved(
        {
            "native callback": lambda: native.on_train_batch_end(trainer, None, outputs, None, 0),
            "SARA bridge": lambda: (
                bridge.on_train_batch_start(trainer, None, None, 0),
                bridge.on_train_batch_end(trainer, None, outputs, None, 0),
            ),
        },
        number=20_000,
        rounds=7,
    )
    return training, hooks


# -- Hugging Face ------------------------------------------------------------------------------------------------


def _transformers(batches: int, rounds: int) -> tuple[Samples, Samples]:
    import torch
    from altametris.sara.integrations.transformers import SaraCallback
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()

    class Native(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.same = _Same()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.same.batch(logs["loss"])

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.same.epoch_end()

    class Timed(TrainerCallback):  # type: ignore[misc]
        def __init__(self, clock: _Clock) -> None:
            self.clock = clock

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.clock.begin(state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.clock.finish(state.global_step - 1)

    class Tokens(torch.utils.data.Dataset[dict[str, Any]]):
        ids = torch.randint(0, 50, (batches * 4, 8), generator=torch.Generator().manual_seed(0))

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, index: int) -> dict[str, Any]:
            ids = self.ids[index]
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": (ids[0] >= 25).long()}

    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    import tempfile

    folder = tempfile.mkdtemp()
    args = TrainingArguments(
        output_dir=folder, num_train_epochs=1, per_device_train_batch_size=4, save_strategy="no", logging_steps=1,
        report_to=[], use_cpu=True, disable_tqdm=True, log_level="error",
    )  # fmt: skip

    def train(callback: Any) -> float:
        clock = _Clock(skip=10)
        callbacks = [Timed(clock), *([callback] if callback else [])]
        trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=Tokens(),
                          callbacks=callbacks)  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # a printed line per step would be most of what is timed
        trainer.train()
        return clock.per_batch

    training = _per_batch(
        train,
        {
            "no callback": lambda: None,
            "native callback": Native,
            "SARA bridge": lambda: SaraCallback(CallbackManager([Recorder()])),
        },
        rounds,
    )
    native, bridge = Native(), SaraCallback(CallbackManager([Recorder()]))
    bridge._bridge.start()
    bridge._bridge.epoch_start(0)
    bridge._num_batches = 10
    state, control = TrainerState(), TrainerControl()
    control.should_log = True
    logs = {"loss": 0.5, "grad_norm": 0.25, "learning_rate": 1e-3, "epoch": 0.1}
    hooks = interleaved(
        {
            "native callback": lambda: (
                native.on_step_begin(args, state, control),
                native.on_step_end(args, state, control),
                native.on_log(args, state, control, logs=logs),
            ),
            "SARA bridge": lambda: (
                bridge.on_step_begin(args, state, control),
                bridge.on_step_end(args, state, control),
                bridge.on_log(args, state, control, logs=logs),
            ),
        },
        number=20_000,
        rounds=7,
    )
    return training, hooks


# -- Keras -------------------------------------------------------------------------------------------------------


def _keras(batches: int, rounds: int) -> tuple[Samples, Samples]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import numpy as np
    from altametris.sara.integrations.keras import SaraCallback

    class Native(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.same = _Same()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.same.batch(logs["loss"])

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.same.epoch_end()

    class Timed(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self, clock: _Clock) -> None:
            super().__init__()
            self.clock = clock

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.clock.begin(batch)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.clock.finish(batch)

    x = np.random.default_rng(0).normal(size=(batches * 4, 4)).astype("float32")

    def train(callback: Any) -> float:
        clock = _Clock(skip=10)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        callbacks = [Timed(clock), *([callback] if callback else [])]
        model.fit(x, x.sum(1, keepdims=True), batch_size=4, epochs=1, verbose=0, callbacks=callbacks)
        return clock.per_batch

    training = _per_batch(
        train,
        {
            "no callback": lambda: None,
            "native callback": Native,
            "SARA bridge": lambda: SaraCallback(CallbackManager([Recorder()])),
        },
        rounds,
    )
    import torch

    native, bridge = Native(), SaraCallback(CallbackManager([Recorder()]))
    bridge._bridge.start()
    bridge._bridge.epoch_start(0)
    logs = {"loss": torch.tensor(0.5)}
    hooks = interleaved(
        {
            "native callback": lambda: native.on_train_batch_end(0, logs),
            "SARA bridge": lambda: (bridge.on_train_batch_begin(0, None), bridge.on_train_batch_end(0, logs)),
        },
        number=20_000,
        rounds=7,
    )
    return training, hooks


def interleaved(contenders: dict[str, Callable[[], object]], *, number: int, rounds: int) -> Samples:
    """Seconds per call of each contender, ``number`` calls a round, rounds interleaved (a warm-up round first)."""
    timers = {name: timeit.Timer(statement) for name, statement in contenders.items()}
    for timer in timers.values():
        timer.timeit(max(1, number // 10))
    samples: Samples = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(number) / number)
    return samples


FRAMEWORKS = {"lightning": _lightning, "transformers": _transformers, "keras": _keras}


def _measure(framework: str) -> Callable[[Budget], Samples]:
    def measure(budget: Budget) -> Samples:
        batches, rounds = (60, 2) if budget.quick else (200, 5)
        training, hooks = FRAMEWORKS[framework](batches, rounds)
        samples = {name: [value * 1e6 for value in values] for name, values in training.items()}
        # The ratio the target judges, from the steadier parts: the framework's own step (no callback) plus each
        # callback's per-batch hooks, measured side by side in thousands of calls. Whole trainings are shown too,
        # but a burst of another process on a shared machine moves them more than the bridge does.
        for contender in ("native callback", "SARA bridge"):
            samples[f"step + {contender}'s hooks"] = [
                (step + min(hooks[contender])) * 1e6 for step in training["no callback"]
            ]
            samples[f"{contender}'s hooks alone"] = [value * 1e6 for value in hooks[contender]]
        return samples

    return measure


def cases(budget: Budget) -> list[Case]:
    """Per training batch, each bridge against the framework's native callback doing the same."""
    return [
        Case(
            f"bridges: {framework}",
            "training, per batch",
            _measure(framework),
            (Target("step + SARA bridge's hooks", "step + native callback's hooks", TARGET),),
            quick=False,
        )
        for framework in FRAMEWORKS
    ]
