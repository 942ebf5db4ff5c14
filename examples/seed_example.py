"""The example of the ``altametris.sara.core.base_callback`` documentation, as a script.

Run it after ``pip install sara-callbacks``: it prints ``Epoch 1: loss=0.5``.
"""

from __future__ import annotations

from altametris.sara.core.base_callback import BaseCallback, CallbackManager


class LoggingCallback(BaseCallback):
    """Prints the loss at the end of every epoch."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:  # type: ignore[override]
        print(f"Epoch {epoch}: loss={metrics['loss']}")


manager = CallbackManager([LoggingCallback()])
manager.on_epoch_end(epoch=1, metrics={"loss": 0.5})
