"""When a callback runs: every N batches, every N epochs, from or until an epoch, once.

A :class:`Trigger` is declared when a callback is registered, for any callback, whoever wrote it:
:meth:`~altametris.sara.core.base_callback.CallbackManager.add_callback` (``when=...``), or the ``when`` key of
its config item. The manager then calls the callback's hooks only when the trigger fires:

* ``every_n_batches = N``: its batch hooks (``on_batch_start`` and ``on_batch_end``) run at the N-th, 2N-th ...
  batch of the training, counted over all epochs (a global count, as Ignite's ``every`` and Lightning's
  ``every_n_train_steps``): the count goes on across epochs and resumes, kept in the manager's state;
* ``every_n_epochs = N``: its in-epoch hooks (``on_epoch_start``, the batch hooks, the validation hooks,
  ``on_epoch_end``) run in the N-th, 2N-th ... epoch (epochs ``N - 1``, ``2N - 1`` ..., 0-indexed), as Lightning's
  ``every_n_epochs``;
* ``from_epoch = A``, ``until_epoch = B``: in epochs ``A <= epoch < B`` only (0-indexed, as the trainer counts them;
  ``until_epoch`` is the first epoch it no longer runs, as Python's ``range``);
* ``once = true``: the first time it fires only (the first such batch with ``every_n_batches``, else the first such
  epoch).

``on_train_start``, ``on_train_end`` and ``on_exception`` always run: a callback opens and closes its files whatever
its trigger. Conditions combine: ``{ every_n_batches = 100, from_epoch = 5 }`` runs every 100th batch from epoch 5.
A string gives one interval the way Composer writes them: ``"100ba"`` (every 100 batches) or ``"2ep"`` (every 2
epochs).

A trigger that does not fire costs nothing: the manager leaves the callback out of the hooks' loops when an epoch
starts, and out of the batch hooks' loops between the batches it fires at.

Example:
    >>> from altametris.sara.core.triggers import Trigger
    >>> Trigger.parse("100ba")
    Trigger(every_n_batches=100)
    >>> str(Trigger.parse({"every_n_epochs": 2, "from_epoch": 4}))
    'every 2 epochs, from epoch 4'
    >>> Trigger.parse({"every_n_batch": 3})
    Traceback (most recent call last):
    ...
    altametris.sara.core.exceptions.ConfigError: when: unknown key 'every_n_batch'; did you mean 'every_n_batches'? ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Union

from .exceptions import ConfigError
from .messages import VALUE_LIMIT, did_you_mean, safe_repr

__all__ = ["TRIGGER_KEYS", "Trigger", "TriggerSpec"]

TRIGGER_KEYS = ("every_n_batches", "every_n_epochs", "from_epoch", "until_epoch", "once")
"""The keys of a trigger's table in a config (``when = { ... }``)."""

_INTERVAL = re.compile(r"\s*(\d+)\s*(ba|ep)\s*")
_UNITS = {"ba": "every_n_batches", "ep": "every_n_epochs"}


@dataclass(frozen=True)
class Trigger:
    """When a callback runs (see the module's documentation); every condition is optional.

    Raises:
        ConfigError: a value of the wrong type or range, naming its key.
    """

    every_n_batches: int | None = None
    every_n_epochs: int | None = None
    from_epoch: int | None = None
    until_epoch: int | None = None
    once: bool = False

    def __post_init__(self) -> None:
        for key, minimum in (("every_n_batches", 1), ("every_n_epochs", 1), ("from_epoch", 0), ("until_epoch", 0)):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
                raise ConfigError(
                    f"when.{key}: expected {'a positive' if minimum else 'a non-negative'} integer, "
                    f"got {safe_repr(value, VALUE_LIMIT)}",
                    key=f"when.{key}",
                )
        if not isinstance(self.once, bool):
            raise ConfigError(
                f"when.once: expected true or false, got {safe_repr(self.once, VALUE_LIMIT)}", key="when.once"
            )
        if self.from_epoch is not None and self.until_epoch is not None and self.until_epoch <= self.from_epoch:
            raise ConfigError(
                f"when.until_epoch: {self.until_epoch} is not after from_epoch {self.from_epoch}: the callback would "
                "never run (until_epoch is the first epoch it no longer runs)",
                key="when.until_epoch",
            )

    @classmethod
    def parse(cls, value: TriggerSpec) -> Trigger:
        """A trigger from what a caller or a config gives.

        ``value`` is a :class:`Trigger`, a table of :data:`TRIGGER_KEYS`, or an interval string ``"<N>ba"`` /
        ``"<N>ep"``.

        Raises:
            ConfigError: naming the key (``when.every_n_batches: ...``) and the value.
        """
        if isinstance(value, Trigger):
            return value
        if isinstance(value, str):
            match = _INTERVAL.fullmatch(value)
            if match is None:
                raise ConfigError(
                    f"when: expected an interval such as '100ba' (every 100 batches) or '2ep' (every 2 epochs), or a "
                    f"table of {', '.join(TRIGGER_KEYS)}; got {safe_repr(value, VALUE_LIMIT)}",
                    key="when",
                )
            return cls(**{_UNITS[match.group(2)]: int(match.group(1))})  # type: ignore[arg-type]
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"when: expected a table of {', '.join(TRIGGER_KEYS)} or an interval string such as '100ba', "
                f"got {type(value).__name__} {safe_repr(value, VALUE_LIMIT)}",
                key="when",
            )
        for key in value:
            if key not in TRIGGER_KEYS:
                text = key if isinstance(key, str) else ""
                raise ConfigError(
                    f"when: unknown key {safe_repr(key, VALUE_LIMIT)}; {did_you_mean(text, TRIGGER_KEYS)}"
                    f"a trigger's keys are: {', '.join(TRIGGER_KEYS)}",
                    key="when",
                )
        if not value:
            raise ConfigError(f"when: the table is empty; give at least one of {', '.join(TRIGGER_KEYS)}", key="when")
        return cls(**value)  # type: ignore[arg-type]  # each value is checked by __post_init__

    @property
    def epochs_only(self) -> bool:
        """Whether only epoch conditions are set (no ``every_n_batches``)."""
        return self.every_n_batches is None

    def runs_in(self, epoch: int) -> bool:
        """Whether the epoch conditions (``once`` aside) let the callback run in ``epoch``."""
        if self.from_epoch is not None and epoch < self.from_epoch:
            return False
        if self.until_epoch is not None and epoch >= self.until_epoch:
            return False
        return self.every_n_epochs is None or (epoch + 1) % self.every_n_epochs == 0

    def fires_at(self, batch: int) -> bool:
        """Whether ``every_n_batches`` fires at the global batch ``batch`` (0-indexed, counted over all epochs)."""
        return self.every_n_batches is None or (batch + 1) % self.every_n_batches == 0

    def next_batch(self, batch: int) -> int:
        """The first global batch at or after ``batch`` at which ``every_n_batches`` fires."""
        every = self.every_n_batches or 1
        return batch + (-(batch + 1)) % every

    def as_config(self) -> dict[str, object]:
        """The trigger as a config table: its set conditions only."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, False)}

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.as_config().items())
        return f"Trigger({shown})"

    def __str__(self) -> str:
        parts = []
        if self.every_n_batches is not None:
            parts.append(f"every {self.every_n_batches} batches" if self.every_n_batches > 1 else "every batch")
        if self.every_n_epochs is not None:
            parts.append(f"every {self.every_n_epochs} epochs" if self.every_n_epochs > 1 else "every epoch")
        if self.from_epoch is not None:
            parts.append(f"from epoch {self.from_epoch}")
        if self.until_epoch is not None:
            parts.append(f"until epoch {self.until_epoch}")
        if self.once:
            parts.append("once")
        return ", ".join(parts) or "always"


TriggerSpec = Union[Trigger, str, "Mapping[str, object]"]
"""What ``when=`` accepts: a :class:`Trigger`, an interval string (``"100ba"``, ``"2ep"``) or a table of
:data:`TRIGGER_KEYS`."""

_ATTRIBUTE = "_sara_trigger"  # an instance attribute: the trigger the callback was registered with


def trigger_of(callback: object) -> Trigger | None:
    """The trigger ``callback`` was registered with (``add_callback(when=...)`` or its config item), or ``None``."""
    found = getattr(callback, "__dict__", {}).get(_ATTRIBUTE)
    return found if isinstance(found, Trigger) else None


def set_trigger(callback: object, trigger: Trigger | None) -> None:
    """Give ``callback`` its trigger (``None``: none, it runs at every hook)."""
    if trigger is None:
        callback.__dict__.pop(_ATTRIBUTE, None)
    else:
        callback.__dict__[_ATTRIBUTE] = trigger
