"""Fault injection: every hook, failing with exceptions of every awkward shape, in the manager and in ``fit``.

For each case the caller gets a ``TrainingError`` that names the callback, the hook and the epoch or batch, with the
very exception raised as ``__cause__`` (or the ``BaseException`` itself, untouched); ``on_exception`` reaches every
callback; and the file-writing built-ins (``csv_logger``, ``jsonl_logger``, ``checkpoint``) leave complete files.
Under the ``warn`` and ``disable`` policies the training runs to its end instead, with the same files.
"""

from __future__ import annotations

import builtins
import csv
import io
import json
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager, logger
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.hookspecs import HOOKS
from altametris.sara.core.loop import fit
from altametris.sara.plugins.checkpoint import Checkpoint
from altametris.sara.plugins.csv_logger import CSVLogger
from altametris.sara.plugins.jsonl_logger import JSONLLogger

if TYPE_CHECKING:
    from pathlib import Path

    from altametris.sara.core.batch_hooks import BatchHooks

LIFECYCLE = [name for name in HOOKS if not HOOKS[name].cleanup]
NEEDS_GROUPS = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups arrived in Python 3.11")


# -- the shapes ------------------------------------------------------------------------------------------------------


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class BadRepr(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class StrNotText(Exception):
    def __str__(self) -> str:
        return 42  # type: ignore[return-value]  # noqa: PLE0307 - the point of this shape


class NeedsArgs(Exception):
    """Cannot be rebuilt from its ``args``: whoever copies it by ``type(e)(*e.args)`` fails."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code)
        self.detail = detail


class Shape(NamedTuple):
    make: Callable[[], BaseException]
    described: str  # how the TrainingError's message describes it


def _group(name: str, *errors: BaseException) -> BaseException:
    kind = "ExceptionGroup" if all(isinstance(error, Exception) for error in errors) else "BaseExceptionGroup"
    group: BaseException = getattr(builtins, kind)(name, list(errors))
    return group


EXCEPTIONS = [
    pytest.param(Shape(ValueError, "ValueError"), id="no-args"),
    pytest.param(
        Shape(lambda: ValueError(42, {"k": [1]}, None), "ValueError: (42, {'k': [1]}, None)"), id="non-str-args"
    ),
    pytest.param(Shape(lambda: BadStr("x"), "BadStr: <str() failed with RuntimeError>"), id="str-raises"),
    pytest.param(Shape(lambda: BadRepr("shown"), "BadRepr: shown"), id="repr-raises"),
    pytest.param(Shape(StrNotText, "StrNotText: <str() failed with TypeError>"), id="str-not-text"),
    pytest.param(Shape(lambda: NeedsArgs(3, "detail"), "NeedsArgs: 3"), id="custom-init"),
    pytest.param(Shape(lambda: KeyError("loss"), "KeyError: 'loss'"), id="key-error"),
    pytest.param(Shape(lambda: OSError(28, "No space left"), "OSError: [Errno 28] No space left"), id="os-error"),
    pytest.param(Shape(lambda: ValueError("a\nb\x1b[31m\x00"), "ValueError: a\nb\x1b[31m\x00"), id="control-chars"),
    pytest.param(Shape(lambda: TrainingError("inner"), "TrainingError: inner"), id="own-error"),
    pytest.param(
        Shape(lambda: _group("several", ValueError("a"), OSError("b")), "ExceptionGroup: several (2 sub-exceptions)"),
        id="exception-group",
        marks=NEEDS_GROUPS,
    ),
]

BASE_EXCEPTIONS = [
    pytest.param(KeyboardInterrupt, id="KeyboardInterrupt"),
    pytest.param(lambda: SystemExit(3), id="SystemExit"),
    pytest.param(lambda: _group("interrupted", KeyboardInterrupt()), id="base-exception-group", marks=NEEDS_GROUPS),
]


# -- callbacks -------------------------------------------------------------------------------------------------------


class Recorder(BaseCallback):
    """A bystander: records every hook; its ``on_exception`` records the error it is given."""

    warn_unsupplied_hooks = False  # it overrides the step hooks too, which fit() without hooks never calls

    def __init__(self) -> None:
        self.hooks: list[str] = []
        self.errors: list[BaseException] = []

    def _seen(self, hook: str) -> None:
        self.hooks.append(hook)

    def on_train_start(self, **kwargs: Any) -> None:
        self._seen("on_train_start")

    def on_train_end(self, **kwargs: Any) -> None:
        self._seen("on_train_end")

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        self._seen("on_epoch_start")

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._seen("on_epoch_end")

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        self._seen("on_batch_start")

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._seen("on_batch_end")

    def on_validation_start(self, **kwargs: Any) -> None:
        self._seen("on_validation_start")

    def on_validation_end(self, metrics: dict[str, float], **kwargs: Any) -> None:
        self._seen("on_validation_end")

    def on_checkpoint_load(self, path: str, **kwargs: Any) -> None:
        self._seen("on_checkpoint_load")

    def on_after_backward(self, batch: int, **kwargs: Any) -> None:
        self._seen("on_after_backward")

    def on_before_optimizer_step(self, batch: int, **kwargs: Any) -> None:
        self._seen("on_before_optimizer_step")

    def on_after_optimizer_step(self, batch: int, **kwargs: Any) -> None:
        self._seen("on_after_optimizer_step")

    def on_validation_batch_start(self, batch: int, **kwargs: Any) -> None:
        self._seen("on_validation_batch_start")

    def on_validation_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._seen("on_validation_batch_end")

    def on_checkpoint_save(self, path: str, **kwargs: Any) -> None:
        self._seen("on_checkpoint_save")

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


class Failing(Recorder):
    """Raises ``error`` (the same instance every time) from ``hook``."""

    def __init__(self, hook: str, error: BaseException, policy: str = "raise") -> None:
        super().__init__()
        self.error = error
        self.on_error = policy  # type: ignore[assignment]

        def fail(*args: object, **kwargs: object) -> None:
            self._seen(hook)
            raise error

        setattr(self, hook, fail)


def _call(manager: CallbackManager, hook: str, **context: Any) -> None:
    arguments = {
        "epoch": 3,
        "batch": 5,
        "metrics": {"loss": 1.0},
        "error": RuntimeError("the training failed"),
        "path": "checkpoints/last.pt",
    }
    getattr(manager, hook)(*[arguments[name] for name in HOOKS[hook].argnames], **context)


WHERE_DIRECT = {"on_epoch_start": " (epoch 3)", "on_epoch_end": " (epoch 3)"}
WHERE_DIRECT.update({name: " (batch 5)" for name, spec in HOOKS.items() if spec.scope == "batch"})
WHERE_DIRECT.update(on_validation_batch_start=" (validation batch 5)", on_validation_batch_end=" (validation batch 5)")


# -- in the manager --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("context", [{}, {"model": "m"}], ids=["plain", "context"])
@pytest.mark.parametrize("shape", EXCEPTIONS)
@pytest.mark.parametrize("hook", LIFECYCLE)
def test_the_manager_wraps_every_shape_in_every_hook(hook: str, shape: Shape, context: dict[str, Any]) -> None:
    error = shape.make()
    failing, after = Failing(hook, error), Recorder()
    with pytest.raises(TrainingError) as caught:
        _call(CallbackManager([Recorder(), failing, after]), hook, **context)
    failure = caught.value
    assert str(failure) == f"callback 'Failing' failed in {hook}{WHERE_DIRECT.get(hook, '')}: {shape.described}"
    assert failure.__cause__ is error
    assert (failure.callback, failure.hook) == (failing, hook)
    assert failure.epoch == (3 if "epoch" in HOOKS[hook].argnames else None)
    assert failure.batch == (5 if "batch" in HOOKS[hook].argnames else None)
    assert after.hooks == []


@pytest.mark.parametrize("policy", ["raise", "warn", "disable"])
@pytest.mark.parametrize("make", BASE_EXCEPTIONS)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_base_exceptions_pass_through_the_manager_untouched(
    hook: str, make: Callable[[], BaseException], policy: str
) -> None:
    error = make()
    after = Recorder()
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the very instance is checked below
        _call(CallbackManager([Failing(hook, error, policy), after]), hook)
    assert caught.value is error
    assert after.hooks == []
    assert after.errors == []


@pytest.mark.parametrize("policy", ["raise", "warn", "disable"])
@pytest.mark.parametrize("shape", EXCEPTIONS)
def test_a_failing_on_exception_is_logged_and_the_others_still_run(
    shape: Shape, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    original = RuntimeError("the training failed")
    before, after = Recorder(), Recorder()
    manager = CallbackManager([before, Failing("on_exception", shape.make(), policy), after])
    with caplog.at_level(logging.ERROR, logger=logger.name):
        manager.on_exception(original)
    assert before.errors == after.errors == [original]
    (record,) = [record for record in caplog.records if record.name == logger.name]
    assert record.getMessage().startswith(f"callback 'Failing' failed in on_exception: {shape.described} (ignored")


# -- in the reference loop ----------------------------------------------------------------------------------------


WHERE_IN_FIT = {
    "on_checkpoint_load": "",
    "on_train_start": "",
    "on_epoch_start": " (epoch 0)",
    "on_batch_start": " (epoch 0, batch 0)",
    "on_after_backward": " (epoch 0, batch 0)",
    "on_before_optimizer_step": " (epoch 0, batch 0)",
    "on_after_optimizer_step": " (epoch 0, batch 0)",
    "on_batch_end": " (epoch 0, batch 0)",
    "on_validation_start": " (epoch 0)",
    "on_validation_batch_start": " (epoch 0, validation batch 0)",
    "on_validation_batch_end": " (epoch 0, validation batch 0)",
    "on_validation_end": " (epoch 0)",
    "on_epoch_end": " (epoch 0)",
    "on_checkpoint_save": " (epoch 0)",
    "on_train_end": " (epoch 1)",
}


def _save(path: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"weights": [0.5, -0.25]}, file)


def _train(folder: Path, *callbacks: BaseCallback, **kwargs: Any) -> tuple[list[BaseCallback], Any]:
    """Train 2 epochs of 2 batches with the three writers around ``callbacks``; return the writers and the result."""
    writers: list[BaseCallback] = [
        CSVLogger(path="metrics.csv", per_batch=True),
        JSONLLogger(path="metrics.jsonl", per_batch=True),
        Checkpoint(dirpath="checkpoints", monitor="val_loss", save_top_k=2, filename="epoch{epoch}.json"),
    ]
    losses = iter([0.5, 0.4, 0.3, 0.2])

    def train_step(batch: int, hooks: BatchHooks) -> dict[str, float]:
        hooks.after_backward()
        hooks.before_optimizer_step("sgd")
        hooks.after_optimizer_step()
        return {"loss": next(losses, 0.1)}

    kwargs.setdefault("train_step", train_step)
    if "validate" not in kwargs:  # every hook runs: validation batch by batch, a resume
        kwargs.update(validation_data=[0], validation_step=lambda batch: {"val_loss": next(losses, 0.1)})
    manager = CallbackManager([writers[0], *callbacks, *writers[1:]])
    result = fit(
        manager,
        epochs=2,
        batches_per_epoch=2,
        save_checkpoint=_save,
        output_dir=folder,
        resumed_from=folder / "restored-from.pt",
        **kwargs,
    )
    return writers, result


def assert_complete_files(folder: Path) -> int:
    """Every file under ``folder`` is complete: CSV rows as wide as the header, JSON lines and checkpoints parse."""
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            continue
        count += 1
        assert not path.name.endswith(".tmp"), f"a temporary file was left: {path}"
        text = path.read_text(encoding="utf-8")
        if path.suffix != ".json":  # an empty log (a failure before its first row) holds no record, and no half one
            assert not text or text.endswith("\n"), f"{path} ends with a partial line: {text[-80:]!r}"
        if path.suffix == ".csv":
            rows = list(csv.reader(io.StringIO(text)))
            assert all(len(row) == len(rows[0]) for row in rows), f"{path} has rows of different widths"
        elif path.suffix == ".jsonl":
            for line in text.splitlines():
                assert isinstance(json.loads(line), dict)
        elif path.suffix == ".json":
            assert json.loads(text) == {"weights": [0.5, -0.25]}
        else:
            pytest.fail(f"unexpected file {path}")
    return count


def _assert_closed(writers: list[BaseCallback]) -> None:
    for writer in writers[:2]:
        assert writer.closed, f"{type(writer).__name__} left its file open"  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", EXCEPTIONS)
@pytest.mark.parametrize("hook", LIFECYCLE)
def test_fit_raises_the_wrapped_failure_after_on_exception_everywhere_with_complete_files(
    hook: str, shape: Shape, tmp_path: Path
) -> None:
    error = shape.make()
    failing, bystander = Failing(hook, error), Recorder()
    with pytest.raises(TrainingError) as caught:
        _train(tmp_path, failing, bystander)
    failure = caught.value
    assert str(failure) == f"callback 'Failing' failed in {hook}{WHERE_IN_FIT[hook]}: {shape.described}"
    assert failure.__cause__ is error
    assert (failure.callback, failure.hook) == (failing, hook)
    assert failing.errors == bystander.errors == [failure]
    assert_complete_files(tmp_path)


@pytest.mark.parametrize("make", BASE_EXCEPTIONS)
@pytest.mark.parametrize("hook", LIFECYCLE)
def test_fit_lets_base_exceptions_through_after_on_exception_everywhere_with_complete_files(
    hook: str, make: Callable[[], BaseException], tmp_path: Path
) -> None:
    error = make()
    failing, bystander = Failing(hook, error), Recorder()
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the very instance is checked below
        _train(tmp_path, failing, bystander)
    assert caught.value is error
    assert failing.errors == bystander.errors == [error]
    assert_complete_files(tmp_path)


@pytest.mark.parametrize("where", ["train_step", "validate"])
@pytest.mark.parametrize(
    "shape", [*EXCEPTIONS, *(pytest.param(Shape(p.values[0], ""), id=p.id, marks=p.marks) for p in BASE_EXCEPTIONS)]
)
def test_a_failing_training_step_is_re_raised_unchanged_with_complete_files(
    where: str, shape: Shape, tmp_path: Path
) -> None:
    error = shape.make()

    def boom(*args: object) -> dict[str, float]:
        raise error

    bystander = Recorder()
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the very instance is checked below
        _train(tmp_path, bystander, **{where: boom})
    assert caught.value is error
    assert bystander.errors == [error]
    assert_complete_files(tmp_path)


@pytest.mark.parametrize("shape", EXCEPTIONS)
def test_a_failing_on_exception_does_not_hide_the_error_that_ended_the_training(
    shape: Shape, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = RuntimeError("the real failure")

    def boom(batch: int) -> dict[str, float]:
        raise original

    bystander = Recorder()
    with caplog.at_level(logging.ERROR, logger=logger.name), pytest.raises(RuntimeError) as caught:
        _train(tmp_path, Failing("on_exception", shape.make()), bystander, train_step=boom)
    assert caught.value is original
    assert bystander.errors == [original]
    assert "failed in on_exception" in caplog.text
    assert_complete_files(tmp_path)


@pytest.mark.parametrize("shape", EXCEPTIONS)
@pytest.mark.parametrize("hook", LIFECYCLE)
@pytest.mark.parametrize("policy", ["warn", "disable"])
def test_under_a_tolerant_policy_fit_runs_to_the_end_with_complete_files(
    policy: str, hook: str, shape: Shape, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    error = shape.make()
    failing, bystander = Failing(hook, error, policy), Recorder()
    with caplog.at_level(logging.WARNING, logger=logger.name):
        writers, result = _train(tmp_path, failing, bystander)
    assert (result.last_epoch, result.epochs_run) == (1, 2)
    assert bystander.hooks[-1] == "on_train_end"
    assert bystander.errors == []
    calls = failing.hooks.count(hook)
    if policy == "disable":
        assert calls == 1
        (failure,) = failing.errors  # its on_exception, with its own failure, so that it can close its files
        assert isinstance(failure, TrainingError)
        assert failure.__cause__ is error
        assert failing.hooks[-1] == hook
    else:
        assert calls == bystander.hooks.count(hook)
        assert failing.errors == []
    records = [record for record in caplog.records if record.name == logger.name]
    # A failure is logged once, then at most once an epoch (two epochs here); disabling is logged once.
    once = policy == "disable" or hook in ("on_checkpoint_load", "on_train_start", "on_train_end")
    assert len(records) == (1 if once else 2)
    assert f"callback 'Failing' failed in {hook}{WHERE_IN_FIT[hook]}: {shape.described}" in records[0].getMessage()
    _assert_closed(writers)
    assert assert_complete_files(tmp_path) == 4  # metrics.csv, metrics.jsonl and two checkpoints
