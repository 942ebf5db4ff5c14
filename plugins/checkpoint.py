"""``checkpoint``: save the model through the trainer's ``save_checkpoint(path)`` and keep the best K files."""

from __future__ import annotations

import logging
import math
import os  # noqa: TC003 - constructor annotations stay resolvable for tools that inspect them
import pathlib
import re
import string
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, NamedTuple

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import PluginParameterError, TrainingError
from altametris.sara.core.files import checkpoint_renamed
from altametris.sara.core.messages import safe_repr

from ._checks import check_choice, check_int, check_path, check_str
from ._metrics import MODES, EpochMonitor, improves
from ._writers import discard, lock_writer, replace, resolve, temporary_sibling

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from altametris.sara.core.files import WriterLock
    from altametris.sara.core.hookspecs import Metrics

__all__ = ["Checkpoint", "SaveCheckpoint", "SavedCheckpoint"]

_logger = logging.getLogger(__name__)

LOCK_NAME = ".sara-checkpoint.lock"
"""The lock file in ``dirpath``: one training at a time keeps (and deletes) the checkpoints of a folder."""

SaveCheckpoint = Callable[[str], object]
"""The trainer's ``save_checkpoint(path)``: writes the model to ``path``."""


class SavedCheckpoint(NamedTuple):
    """One checkpoint file that the callback keeps: its name in ``dirpath``, its epoch and its score."""

    filename: str
    epoch: int
    score: float | None


class Checkpoint(BaseCallback):
    """Save the model when the monitored metric improves (or every N epochs), keeping the best ``save_top_k`` files.

    The trainer passes a ``save_checkpoint(path)`` callable as a context keyword (the reference loop's
    ``fit(save_checkpoint=...)`` does); the callback calls it with a temporary path in ``dirpath`` and renames the
    file it wrote to its final name with :func:`os.replace`, so a checkpoint file is always complete. Then it deletes
    the files that fell out of the best ``save_top_k``, only ever files it saved itself, inside ``dirpath``.

    With ``monitor``, an epoch is saved when its value ranks among the best ``save_top_k`` (with ``save_top_k=1``:
    when it beats the best so far; NaN never does). With ``monitor=None`` (``monitor = false`` in a TOML, YAML or JSON
    config), every checked epoch is saved and the
    ``save_top_k`` most recent are kept. The list of kept files is part of :meth:`state_dict`, so a resumed training
    keeps ranking against the files saved before the interruption; at its start, it deletes the files of its
    template in ``dirpath`` that the list does not hold (saved by the interrupted run after the state, or about to be
    deleted) and stale temporaries, so the folder holds what an uninterrupted run's would.

    The callback records a file in its list before it calls ``save_checkpoint``, so the manager's state saved inside
    ``save_checkpoint`` lists the file being written; the manager calls it after the other callbacks
    (:attr:`~altametris.sara.core.base_callback.BaseCallback.saves_checkpoints`), so that state is the whole epoch's.

    One training at a time keeps checkpoints in a folder: from ``on_train_start`` to its end the callback holds the
    lock file ``.sara-checkpoint.lock`` there, and a second live training given the same folder is refused at its
    ``on_train_start``, naming the folder and the other process (two would delete each other's files). The kernel
    drops the lock of a killed process: a killed run never blocks its resume.

    Args:
        dirpath: the folder of the checkpoints, created at ``on_train_start``; a relative path resolves against the
            trainer's ``output_dir`` context keyword (the demo's run folder) or the current directory.
        monitor: the epoch metric to rank by, or ``None`` (``false`` in a config file, which has no null) to save
            every ``every_n_epochs`` epochs.
        mode: ``"min"`` when lower is better, ``"max"`` when higher is better.
        save_top_k: how many files to keep, ``-1`` for all.
        every_n_epochs: consider saving every N epochs only (after epochs N-1, 2N-1, ...).
        filename: the file name template, formatted with ``epoch`` and the epoch's metrics
            (``"epoch{epoch:03d}-{val_loss:.4f}.ckpt"``); it must contain ``{epoch}`` when more than one file is kept.

    Raises:
        PluginParameterError: for a parameter of the wrong type or value.

    Example:
        >>> import json, os, tempfile
        >>> def save_checkpoint(path):
        ...     with open(path, "w") as file:
        ...         json.dump({"weights": [0.5]}, file)
        >>> folder = tempfile.mkdtemp()
        >>> checkpoint = Checkpoint(dirpath=folder, monitor="val_loss", save_top_k=2)
        >>> checkpoint.on_train_start(save_checkpoint=save_checkpoint)
        >>> for epoch, loss in enumerate([0.5, 0.3, 0.4, 0.2]):
        ...     checkpoint.on_epoch_end(epoch, {"val_loss": loss}, save_checkpoint=save_checkpoint)
        >>> checkpoint.on_train_end()
        >>> sorted(os.listdir(folder))
        ['epoch001.ckpt', 'epoch003.ckpt']
        >>> checkpoint.best_model_path.name, checkpoint.best_model_score
        ('epoch003.ckpt', 0.2)
    """

    rank_zero_only = True  # it writes files or prints: once, on rank 0, in a training of several processes
    saves_checkpoints = True  # called after the other callbacks: what it saves is the whole epoch's snapshot

    plugin = "checkpoint"
    parameter_choices: ClassVar[Mapping[str, Sequence[str]]] = {"mode": MODES}  # configs and `show` read it

    def __init__(
        self,
        *,
        dirpath: str | os.PathLike[str] = "checkpoints",
        monitor: str | Literal[False] | None = "val_loss",
        mode: str = "min",
        save_top_k: int = 1,
        every_n_epochs: int = 1,
        filename: str = "epoch{epoch:03d}.ckpt",
    ) -> None:
        self.dirpath = check_path(self.plugin, "dirpath", dirpath)
        # false: a config's way to say None (TOML has no null); a per-epoch save point from any format
        self.monitor = None if monitor is None or monitor is False else check_str(self.plugin, "monitor", monitor)
        self.mode = check_choice(self.plugin, "mode", mode, MODES)
        self.save_top_k = check_int(self.plugin, "save_top_k", save_top_k, minimum=-1)
        if self.save_top_k == 0:
            raise PluginParameterError(
                f"{self.plugin}: parameter 'save_top_k' expects -1 (keep all) or a count >= 1, got 0; to save "
                f"nothing, remove the checkpoint callback from the config",
                plugin=self.plugin,
                parameter="save_top_k",
            )
        self.every_n_epochs = check_int(self.plugin, "every_n_epochs", every_n_epochs, minimum=1)
        self.filename = _check_template(self.plugin, filename, several=self.save_top_k != 1)
        self.saved: list[SavedCheckpoint] = []
        """The files kept, best first (most recent first without ``monitor``)."""
        self._directory: pathlib.Path | None = None
        self._lock: WriterLock | None = None
        self._resumed = False  # a state was loaded: the next on_train_start tidies the folder
        self._watch = None if self.monitor is None else EpochMonitor(self.plugin, self.monitor)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dirpath={str(self.dirpath)!r}, monitor={self.monitor!r}, mode={self.mode!r}, "
            f"save_top_k={self.save_top_k})"
        )

    @property
    def directory(self) -> pathlib.Path:
        """The resolved ``dirpath`` (against the trainer's ``output_dir`` once the training started)."""
        return self._directory if self._directory is not None else resolve(self.dirpath, None)

    @property
    def best_model_path(self) -> pathlib.Path | None:
        """The best file kept (the most recent without ``monitor``), ``None`` before the first save."""
        return self.directory / self.saved[0].filename if self.saved else None

    @property
    def best_model_score(self) -> float | None:
        """The monitored value of :attr:`best_model_path`."""
        return self.saved[0].score if self.saved else None

    # -- hooks ----------------------------------------------------------------------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Check that the trainer passes ``save_checkpoint``; create ``dirpath`` and take its lock; forget files gone.

        Raises:
            TrainingError: another live training keeps checkpoints in ``dirpath`` (naming the folder and that
                process: two would delete each other's files), or the trainer passes no ``save_checkpoint``.
        """
        _saver(self, kwargs, "on_train_start")
        self._release()
        self._directory = directory = resolve(self.dirpath, kwargs.get("output_dir"), callback=self)
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = lock_writer(self, directory / LOCK_NAME, directory)
        missing = [entry.filename for entry in self.saved if not (directory / entry.filename).is_file()]
        if missing:
            _logger.warning("%s: saved checkpoints no longer in %s, forgotten: %s", self.plugin, directory, missing)
            self.saved = [entry for entry in self.saved if entry.filename not in missing]
        if self._resumed:
            self._resumed = False
            self._tidy(directory)
        if self._watch is not None:
            self._watch.started()
            self._watch.seen = any(entry.score is not None for entry in self.saved)

    def _tidy(self, directory: pathlib.Path) -> None:
        """After a resume: delete this template's files that the kept list does not hold, and stale temporaries.

        They are what an interrupted run wrote after the saved state (or was about to delete): an uninterrupted run
        would not have them.
        """
        name = _template_pattern(self.filename)
        temporary = re.compile(rf"\.({name.pattern})\.\d+\.tmp")
        kept = {entry.filename for entry in self.saved}
        removed = []
        for path in sorted(directory.iterdir()):
            if path.name in kept or not path.is_file():
                continue
            if name.fullmatch(path.name) or temporary.fullmatch(path.name):
                discard(path)
                removed.append(path.name)
        if removed:
            _logger.info("%s: resumed; removed files the saved state does not keep: %s", self.plugin, removed)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Note that a new epoch began, without validation so far."""
        if self._watch is not None:
            self._watch.epoch_started()

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Note that this epoch has its validation."""
        if self._watch is not None:
            self._watch.validated()

    def on_train_end(self, **kwargs: Any) -> None:
        """Release the folder's lock; fail when no epoch of the training reported ``monitor``."""
        self._release()
        if self._watch is not None:
            self._watch.check_reported(callback=self)

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Release the folder's lock: the files kept so far are complete."""
        self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"] = None  # a copy (pickle, a spawned process) does not hold the original's lock
        return state

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Save a checkpoint when this epoch qualifies; delete the files that no longer do."""
        if (epoch + 1) % self.every_n_epochs:
            return
        score: float | None = None
        if self._watch is not None:
            score = self._watch.value(metrics, epoch=epoch, callback=self)
            if score is None or not self._qualifies(score):  # None: no validation in this epoch, others have one
                return
        save = _saver(self, kwargs, "on_epoch_end")
        name = self._name(epoch, metrics)
        kept = [entry for entry in self.saved if entry.filename != name] + [SavedCheckpoint(name, epoch, score)]
        if self.monitor is None:
            kept.sort(key=lambda entry: -entry.epoch)
        else:
            sign = 1.0 if self.mode == "min" else -1.0
            kept.sort(key=lambda entry: (sign * (entry.score or 0.0), entry.epoch))
        limit = len(kept) if self.save_top_k == -1 else self.save_top_k
        # The new list is recorded before save_checkpoint runs, so that the state a trainer saves inside it (the
        # manager's state_dict) lists the file being written; if the save fails, the list is what it was.
        previous, (self.saved, dropped) = self.saved, (kept[:limit], kept[limit:])
        try:
            self._save(save, name, epoch)
        except BaseException:
            self.saved = previous
            raise
        for entry in dropped:
            discard(self.directory / entry.filename)

    def _qualifies(self, score: float) -> bool:
        if math.isnan(score):
            return False
        if self.save_top_k == -1 or len(self.saved) < self.save_top_k:
            return True
        return improves(score, self.saved[-1].score, self.mode)

    def _name(self, epoch: int, metrics: Metrics) -> str:
        fields: dict[str, object] = dict(metrics)
        fields["epoch"] = epoch
        try:
            name = self.filename.format_map(fields)
        except (KeyError, ValueError, IndexError, AttributeError) as error:
            raise TrainingError(
                f"{self.plugin}: cannot format the file name {self.filename!r} with epoch {epoch} and the epoch "
                f"metrics {sorted(metrics)}: {type(error).__name__}: {error}; use only 'epoch' and those keys",
                callback=self,
                hook="on_epoch_end",
                epoch=epoch,
            ) from error
        if pathlib.PurePath(name).name != name or name in ("", ".", ".."):
            raise TrainingError(
                f"{self.plugin}: the file name {self.filename!r} gave {name!r}, which is not a plain file name; "
                f"checkpoints are only written inside dirpath",
                callback=self,
                hook="on_epoch_end",
                epoch=epoch,
            )
        return name

    def _save(self, save: SaveCheckpoint, name: str, epoch: int) -> None:
        target = self.directory / name
        temporary = temporary_sibling(target)
        discard(temporary)
        try:
            save(str(temporary))
            if not temporary.exists():
                raise TrainingError(
                    f"{self.plugin}: save_checkpoint({str(temporary)!r}) returned without writing that file; it must "
                    f"write the checkpoint to the path it is given (the callback then renames it to {name!r})",
                    callback=self,
                    hook="on_epoch_end",
                    epoch=epoch,
                )
            replace(temporary, target)
            checkpoint_renamed(save, temporary, target)  # on_checkpoint_save names the final file
        finally:
            discard(temporary)
        _logger.info("%s: saved %s", self.plugin, target)

    # -- state ----------------------------------------------------------------------------------------------------

    @property
    def state_key(self) -> str:
        """Unique per folder, file names, metric and mode, so that two instances can keep two sets of files."""
        return (
            f"Checkpoint{{dirpath={str(self.dirpath)!r}, filename={self.filename!r}, monitor={self.monitor!r}, "
            f"mode={self.mode!r}}}"
        )

    def state_dict(self) -> dict[str, Any]:
        """The files kept, with their epochs and scores, best first."""
        return {"saved": [list(entry) for entry in self.saved]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue ranking against the files of :meth:`state_dict` (those gone by ``on_train_start`` are dropped)."""
        self.saved = [
            SavedCheckpoint(str(filename), int(epoch), None if score is None else float(score))
            for filename, epoch, score in state_dict["saved"]
        ]
        self._resumed = True


def _saver(callback: Checkpoint, context: Mapping[str, Any], hook: str) -> SaveCheckpoint:
    save: SaveCheckpoint | None = context.get("save_checkpoint")
    if not callable(save):
        found = "nothing" if save is None else f"{type(save).__name__} {save!r}"
        raise TrainingError(
            f"{callback.plugin} needs the trainer to pass save_checkpoint=<a function that writes the model to the "
            f"path it is given> as a context keyword argument of every hook, got {found}; with the reference loop: "
            f"fit(..., save_checkpoint=...)",
            callback=callback,
            hook=hook,
        )
    return save


def _template_pattern(template: str) -> re.Pattern[str]:
    """A pattern that the file names made from ``template`` match (each field matches any text)."""
    parts = [
        re.escape(literal) + ("" if field is None else ".+?")
        for literal, field, _, _ in string.Formatter().parse(template)
    ]
    return re.compile("".join(parts))


def _check_template(plugin: str, template: object, *, several: bool) -> str:
    filename = check_str(plugin, "filename", template)
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(filename) if field is not None}
    except ValueError as error:
        raise PluginParameterError(
            f"{plugin}: parameter 'filename' is not a valid template ({error}): {safe_repr(filename)}; "
            f"write fields as {{epoch}} or {{val_loss:.4f}}",
            plugin=plugin,
            parameter="filename",
        ) from error
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        raise PluginParameterError(
            f"{plugin}: parameter 'filename' must be a plain file name (checkpoints go inside dirpath), got "
            f"{safe_repr(filename)}; put folders in 'dirpath'",
            plugin=plugin,
            parameter="filename",
        )
    if several and "epoch" not in {field.split(".")[0].split("[")[0] for field in fields}:
        raise PluginParameterError(
            f"{plugin}: parameter 'filename' must contain {{epoch}} when more than one checkpoint is kept, got "
            f"{safe_repr(filename)}: each file would overwrite the previous one",
            plugin=plugin,
            parameter="filename",
        )
    return filename
