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
* ``once = true``: the first time it fires only: in the first epoch it runs in and, with ``every_n_batches``, at the
  first batch it fires at (its other epoch hooks run until then, and in that epoch).

``on_train_start``, ``on_train_end`` and ``on_exception`` always run: a callback opens and closes its files whatever
its trigger. Conditions combine: ``{ every_n_batches = 100, from_epoch = 5 }`` runs every 100th batch from epoch 5.
A string gives one interval the way Composer writes them: ``"100ba"`` (every 100 batches) or ``"2ep"`` (every 2
epochs).

A triggered callback's hooks go through a gate, one cheap call per hook call that decides whether the callback's hook
runs; a clock, one per manager that has triggered callbacks, counts the batches (after each ``on_batch_end``) and
opens or closes the gates when an epoch starts and at the batches where a trigger starts or stops firing. Which hooks
a trigger gates, and which hooks the clock follows, are the hookspecs' facts
(:attr:`~altametris.sara.core.hookspecs.HookSpec.scope` and :attr:`~altametris.sara.core.hookspecs.HookSpec.boundary`):
a new hook of scope ``"batch"`` is gated like ``on_batch_end``.

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

from collections.abc import Mapping
from typing import Any, Union

from ._callback import TRIGGER_ATTRIBUTE
from ._calling import Entry, taking_everything
from ._state import key_of
from .exceptions import ConfigError, StateError
from .hookspecs import HOOKS
from .messages import VALUE_LIMIT, did_you_mean, safe_repr

__all__ = ["TRIGGER_KEYS", "Trigger", "TriggerSpec"]

TRIGGER_KEYS = ("every_n_batches", "every_n_epochs", "from_epoch", "until_epoch", "once")
"""The keys of a trigger's table in a config (``when = { ... }``)."""

_UNITS = {"ba": "every_n_batches", "ep": "every_n_epochs"}


class Trigger:
    """When a callback runs (see the module's documentation); every condition is optional. Immutable, hashable.

    Raises:
        ConfigError: a value of the wrong type or range, naming its key.
    """

    __slots__ = TRIGGER_KEYS

    every_n_batches: int | None
    every_n_epochs: int | None
    from_epoch: int | None
    until_epoch: int | None
    once: bool

    def __init__(
        self,
        every_n_batches: int | None = None,
        every_n_epochs: int | None = None,
        from_epoch: int | None = None,
        until_epoch: int | None = None,
        once: bool = False,
    ) -> None:
        setter = object.__setattr__  # the attributes are read-only afterwards (see __setattr__)
        for key, value in zip(TRIGGER_KEYS, (every_n_batches, every_n_epochs, from_epoch, until_epoch, once)):
            setter(self, key, value)
        self._check()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"a Trigger is immutable; make another: Trigger(**{{**trigger.as_config(), {name!r}: ...}})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trigger) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Trigger, self._values())

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, key) for key in TRIGGER_KEYS)

    def _check(self) -> None:
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
            text = value.strip().lower()
            number, unit = text[:-2].strip(), text[-2:]
            if unit not in _UNITS or not (number.isascii() and number.isdigit()):
                raise ConfigError(
                    f"when: expected an interval such as '100ba' (every 100 batches) or '2ep' (every 2 epochs), or a "
                    f"table of {', '.join(TRIGGER_KEYS)}; got {safe_repr(value, VALUE_LIMIT)}",
                    key="when",
                )
            return cls(every_n_batches=int(number)) if unit == "ba" else cls(every_n_epochs=int(number))
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
        return cls(**value)  # type: ignore[arg-type]  # each value is checked by _check

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
        return {
            key: value for key, value in zip(TRIGGER_KEYS, self._values()) if value is not None and value is not False
        }

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


def trigger_of(callback: object) -> Trigger | None:
    """The trigger ``callback`` was registered with (``add_callback(when=...)`` or its config item), or ``None``."""
    found = getattr(callback, "__dict__", {}).get(TRIGGER_ATTRIBUTE)
    return found if isinstance(found, Trigger) else None


def set_trigger(callback: object, trigger: Trigger | None) -> None:
    """Give ``callback`` its trigger (``None``: none, it runs at every hook)."""
    if trigger is None:
        callback.__dict__.pop(TRIGGER_ATTRIBUTE, None)
    else:
        callback.__dict__[TRIGGER_ATTRIBUTE] = trigger


class Gate:
    """Whether one triggered callback runs now: ``open[scope]`` for its hooks of that scope (``"epoch"``, ``"batch"``).

    ``fired`` is where a ``once`` trigger fired: ``[epoch, global batch]`` (``None`` until then).
    """

    __slots__ = ("callback", "fired", "open", "trigger")

    def __init__(self, callback: object, trigger: Trigger) -> None:
        self.callback = callback
        self.trigger = trigger
        self.fired: list[int | None] = [None, None]
        self.open = {"epoch": True, "batch": True}

    def decide(self, epoch: int, batch: int, *, starting: bool = False) -> None:
        """Open or close for ``epoch`` and the global ``batch``; ``starting``: the epoch starts (a ``once`` fires)."""
        trigger, fired = self.trigger, self.fired
        runs = trigger.runs_in(epoch) and (not trigger.once or fired[0] in (None, epoch))
        if runs and starting and trigger.once and trigger.epochs_only:
            fired[0] = epoch
        self.open["epoch"] = runs
        self.open["batch"] = runs and trigger.fires_at(batch) and (trigger.epochs_only or fired[1] in (None, batch))

    def wrap(self, entry: Entry) -> Entry:
        """``entry``, called only while the gate is open for its hook's scope."""
        call, scope, is_open = taking_everything(entry), HOOKS[entry.hook].scope, self.open

        def gated(*args: object, **kwargs: object) -> object:
            return call(*args, **kwargs) if is_open[scope] else None

        return entry._replace(call=gated, context=True, arity=None)


class TriggerClock:
    """The batch count and the epoch of one manager's training, and the gates of its triggered callbacks.

    It observes the hooks that start an epoch (before the callbacks) and end a batch (after them): the manager puts
    its :attr:`before` and :attr:`after` entries around the callbacks' own.
    """

    def __init__(self) -> None:
        self.batches = 0  # training batches ended, over all epochs and resumes
        self.epoch = 0
        self.due = 0  # the batch count at which a gate opens or closes next
        self.gates: dict[int, Gate] = {}
        self.before = {
            name: Entry(None, name, self.epoch_starts, False) for name, hook in HOOKS.items() if hook.starts("epoch")
        }
        self.after = {
            name: Entry(None, name, self.batch_ends, False) for name, hook in HOOKS.items() if hook.ends("batch")
        }

    def gated(self, callback: object, trigger: Trigger, entries: Mapping[str, Entry]) -> dict[str, Entry]:
        """``callback``'s entries, those of its epoch and batch hooks behind its gate."""
        gate = self.gates[id(callback)] = Gate(callback, trigger)
        self._decide()
        return {name: entry if HOOKS[name].scope == "run" else gate.wrap(entry) for name, entry in entries.items()}

    def forget(self, callback: object) -> None:
        """``callback`` left the manager."""
        gate = self.gates.get(id(callback))
        if gate is not None and gate.callback is callback:
            del self.gates[id(callback)]

    def epoch_starts(self, epoch: int, *_: object) -> None:
        """An epoch starts: who runs in it."""
        self.epoch = epoch
        self._decide(starting=True)

    def batch_ends(self, *_: object) -> None:
        """A batch ended: a ``once`` that ran at it is used up; the gates change at the batches where they must."""
        if self.batches + 1 < self.due:
            self.batches += 1
            return
        for gate in self.gates.values():
            if gate.trigger.once and gate.open["batch"] and not gate.trigger.epochs_only:
                gate.fired[:] = [self.epoch, self.batches]
        self.batches += 1
        self._decide()

    def _decide(self, *, starting: bool = False) -> None:
        due = 1 << 62
        for gate in self.gates.values():
            gate.decide(self.epoch, self.batches, starting=starting)
            every = gate.trigger.every_n_batches
            if every is not None and gate.open["epoch"]:  # it opens at its next firing, and closes after it
                due = min(due, self.batches + 1 if gate.open["batch"] else gate.trigger.next_batch(self.batches))
        self.due = due

    # -- saved with the callbacks' state ------------------------------------------------------------------------

    def _names(self) -> dict[int, str]:
        """A name per triggered callback that a resumed training finds again: its state key, numbered if shared."""
        names: dict[int, str] = {}
        seen: dict[str, int] = {}
        for key, gate in self.gates.items():
            name = key_of(gate.callback)  # type: ignore[arg-type]
            seen[name] = seen.get(name, 0) + 1
            names[key] = name if seen[name] == 1 else f"{name}#{seen[name]}"
        return names

    def state(self) -> dict[str, object]:
        """The counts a resumed training needs: batches ended, the epoch, and where ``once`` triggers fired."""
        names = self._names()
        once = {names[key]: list(gate.fired) for key, gate in self.gates.items() if gate.fired != [None, None]}
        return {"batches": self.batches, "epoch": self.epoch, "once": once}

    def load(self, state: Mapping[str, object]) -> None:
        """Restore what :meth:`state` returned.

        Raises:
            StateError: the saved counts are malformed.
        """
        batches, epoch, once = state.get("batches"), state.get("epoch", 0), state.get("once", {})
        if not all(isinstance(count, int) and count >= 0 for count in (batches, epoch)) or not isinstance(once, dict):
            raise StateError(
                f"the saved trigger counts are malformed: {state!r}; expected {{'batches': int >= 0, 'epoch': "
                "int >= 0, 'once': {...}}",
                key="sara.triggers",
            )
        self.batches, self.epoch = batches, epoch  # type: ignore[assignment]  # ints, checked above
        by_name = {name: key for key, name in self._names().items()}
        for name, fired in once.items():
            if name in by_name:
                self.gates[by_name[name]].fired[:] = list(fired)
        self._decide()
