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

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

from . import _dispatch
from ._state import key_of
from .exceptions import ConfigError, StateError
from .messages import VALUE_LIMIT, did_you_mean, safe_repr

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._callback import BaseCallback
    from ._dispatch import HookFunction
    from ._hooktable import HookTable

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

_ATTRIBUTE = _dispatch.TRIGGER_ATTRIBUTE  # an instance attribute: the trigger the callback was registered with


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


IN_EPOCH = (
    "on_epoch_start",
    "on_batch_start",
    "on_batch_end",
    "on_validation_start",
    "on_validation_end",
    "on_epoch_end",
)
"""The hooks a trigger gates; ``on_train_start``, ``on_train_end`` and ``on_exception`` always run."""
BATCH_HOOKS = ("on_batch_start", "on_batch_end")


class TriggerClock(_dispatch.Clock):
    """The triggers of one manager's active callbacks: the batch count, the epoch, and who runs now.

    An epoch's start decides who sleeps through it (``asleep``); the end of a batch at which a batch trigger starts
    or stops firing decides whose batch hooks wait (``waiting``). Either change publishes the touched hooks'
    dispatchers again, from a cache: between changes, a hook call is the usual loop over the callbacks that run.
    """

    def __init__(self, table: HookTable) -> None:
        self.table = weakref.ref(table)
        self.batches = 0
        self.due = 1 << 62
        self.epoch = 0
        self.triggers: dict[int, tuple[BaseCallback, Trigger]] = {}
        self.fired: dict[int, list[int | None]] = {}  # once: [the epoch it fired in, the batch it fired at]
        self.asleep: frozenset[int] = frozenset()
        self.waiting: frozenset[int] = frozenset()
        self.cache: dict[tuple[str, frozenset[int] | None], HookFunction] = {}

    def follow(self, active: Sequence[BaseCallback]) -> bool:
        """Take the triggers of ``active``; whether the dispatchers must start or stop reporting to the clock."""
        before = bool(self.triggers)
        self.triggers = {id(cb): (cb, found) for cb in active if (found := trigger_of(cb)) is not None}
        for key in [key for key in self.fired if key not in self.triggers]:
            del self.fired[key]
        self._decide(mark=False)
        return before != bool(self.triggers)

    def skipped(self, hook: str) -> frozenset[int] | None:
        """The callbacks the triggers leave out of ``hook`` now; ``None`` for a hook no trigger gates."""
        if not self.triggers or hook not in IN_EPOCH:
            return None
        return self.asleep | self.waiting if hook in BATCH_HOOKS else self.asleep

    def _decide(self, *, mark: bool = True) -> tuple[bool, bool]:
        """Who sleeps through ``epoch`` and whose batch hooks wait at ``batches``; whether each changed.

        ``mark``: the training is at that point (an epoch starts, a batch ended), so a ``once`` trigger that fires
        there is used up; not when a callback is registered or a state loaded, before the training gets there.
        """
        epoch, batch = self.epoch, self.batches
        asleep, waiting, due = set(), set(), 1 << 62
        for key, (_, trigger) in self.triggers.items():
            fired = self.fired.setdefault(key, [None, None]) if trigger.once else None
            runs = trigger.runs_in(epoch)
            if fired is not None:
                if trigger.epochs_only:
                    runs = runs and fired[0] in (None, epoch)
                    if runs and mark:
                        fired[0] = epoch
                else:
                    runs = runs and fired[1] in (None, batch)
            if not runs:
                asleep.add(key)
                continue
            if trigger.every_n_batches is None:
                continue
            if trigger.fires_at(batch):
                if trigger.every_n_batches > 1 or fired is not None:  # every batch: nothing changes at its end
                    due = min(due, batch + 1)
                if fired is not None and mark:
                    fired[1] = batch
            else:
                waiting.add(key)
                due = min(due, trigger.next_batch(batch))
        self.due = due
        changed = (frozenset(asleep) != self.asleep, frozenset(waiting) != self.waiting)
        self.asleep, self.waiting = frozenset(asleep), frozenset(waiting)
        return changed

    def _republish(self, hooks: Iterable[str]) -> None:
        table = self.table()
        owner = table._owner() if table is not None else None
        if table is None or owner is None:
            return
        overridden = {
            name for _, plans in (table.plans.get(key, (None, {})) for key in self.triggers) for name in plans
        }
        table._publish(owner, [name for name in hooks if name in overridden or name == "on_epoch_start"], cached=True)

    def epoch_starts(self, epoch: int) -> HookFunction | None:
        table = self.table()
        if table is None:
            return None
        with table.lock:
            self.epoch = epoch
            if not any(self._decide()):
                return None
            self._republish(IN_EPOCH)
            owner = table._owner()
            found: HookFunction | None = vars(owner).get("on_epoch_start") if owner is not None else None
            return found

    def batch_ends(self) -> None:
        table = self.table()
        if table is None:
            return
        with table.lock:
            ended = self.batches - 1  # a once trigger that ran at that batch is used up, even if nothing marked it
            for key, (_, trigger) in self.triggers.items():
                if trigger.once and not trigger.epochs_only and key not in self.asleep and key not in self.waiting:
                    fired = self.fired.setdefault(key, [None, None])
                    if fired[1] is None:
                        fired[1] = ended
            asleep, waiting = self._decide()
            if asleep or waiting:
                self._republish(IN_EPOCH if asleep else BATCH_HOOKS)

    # -- saved with the callbacks' state ------------------------------------------------------------------------

    def _names(self) -> dict[int, str]:
        """A name per triggered callback that a resumed training finds again: its state key, numbered if shared."""
        names: dict[int, str] = {}
        seen: dict[str, int] = {}
        for key, (callback, _) in self.triggers.items():
            name = key_of(callback)
            seen[name] = seen.get(name, 0) + 1
            names[key] = name if seen[name] == 1 else f"{name}#{seen[name]}"
        return names

    def state(self) -> dict[str, object]:
        """The counts a resumed training needs: batches ended, the epoch, and which ``once`` triggers fired."""
        names = self._names()
        once = {names[key]: list(fired) for key, fired in self.fired.items() if key in names and fired != [None, None]}
        return {"batches": self.batches, "epoch": self.epoch, "once": once}

    def load(self, state: Mapping[str, object]) -> None:
        """Restore what :meth:`state` returned.

        Raises:
            StateError: the saved counts are malformed.
        """
        batches, epoch, once = state.get("batches"), state.get("epoch", 0), state.get("once", {})
        if (
            not isinstance(batches, int)
            or not isinstance(epoch, int)
            or batches < 0
            or epoch < 0
            or not isinstance(once, dict)
        ):
            raise StateError(
                f"the saved trigger counts are malformed: {state!r}; expected {{'batches': int >= 0, 'epoch': "
                "int >= 0, 'once': {...}}",
                key="sara.triggers",
            )
        table = self.table()
        if table is None:
            return
        with table.lock:
            self.batches, self.epoch = batches, epoch
            by_name = {name: key for key, name in self._names().items()}
            self.fired = {by_name[name]: list(fired) for name, fired in once.items() if name in by_name}
            self._decide(mark=False)
            self._republish(IN_EPOCH)
