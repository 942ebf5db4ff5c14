"""progress_bar: a live bar on a terminal (tqdm when installed), one line per epoch when forced, else silent."""

from __future__ import annotations

import io
import sys
import types
from typing import Any, ClassVar

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.control import TrainingControl
from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.progress_bar import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def train(bar: ProgressBar, *, epochs: int = 2, stop_after: int | None = None) -> None:
    class Stop(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            if epoch == stop_after:
                kwargs["control"].request_stop("enough", source="test")

    fit(
        CallbackManager([Stop(), bar]),
        epochs=epochs,
        batches_per_epoch=3,
        train_step=lambda batch: {"loss": 1.0 / (batch + 1)},
        validate=lambda: {"val_loss": 0.25},
    )


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)


def test_it_is_silent_when_the_output_is_not_a_terminal() -> None:
    output = io.StringIO()
    train(ProgressBar(stream=output))
    assert output.getvalue() == ""


def test_forced_onto_a_file_it_prints_one_line_per_epoch_and_who_stopped_the_training() -> None:
    output = io.StringIO()
    train(ProgressBar(force=True, stream=output), epochs=5, stop_after=1)
    assert output.getvalue().splitlines() == [
        "epoch 0 (1/5) loss=0.6111 val_loss=0.25",
        "epoch 1 (2/5) loss=0.6111 val_loss=0.25",
        "stopped early by test: enough",
    ]


@pytest.mark.usefixtures("no_tqdm")
def test_on_a_terminal_without_tqdm_it_redraws_one_line_per_epoch() -> None:
    output = Terminal()
    train(ProgressBar(stream=output, refresh_seconds=0), epochs=1)
    text = output.getvalue()
    assert "\r" in text
    assert "[######..............] 1/3 loss=1" in text
    final = text.split("\r")[-1]
    assert final.rstrip() == "epoch 0 (1/1) [####################] 3/3 loss=0.6111 val_loss=0.25"
    assert text.endswith("\n")


def test_stdout_is_looked_up_when_the_training_starts(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ProgressBar(force=True, stream="stdout")
    train(bar, epochs=1)
    assert capsys.readouterr().out == "epoch 0 (1/1) loss=0.6111 val_loss=0.25\n"


@pytest.mark.usefixtures("no_tqdm")
def test_asking_for_tqdm_without_it_names_the_extra_to_install() -> None:
    with pytest.raises(PluginParameterError) as caught:
        ProgressBar(backend="tqdm")
    assert caught.value.parameter == "backend"
    assert "pip install 'sara-callbacks[progress]'" in str(caught.value)


class FakeBar:
    made: ClassVar[list[FakeBar]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.updates = 0
        self.postfix = ""
        self.closed = False
        FakeBar.made.append(self)

    def update(self, count: int) -> None:
        self.updates += count

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch: pytest.MonkeyPatch) -> type[FakeBar]:
    module = types.ModuleType("tqdm")
    module.tqdm = FakeBar  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm", module)
    FakeBar.made = []
    return FakeBar


def test_with_tqdm_installed_a_terminal_gets_one_tqdm_bar_per_epoch(fake_tqdm: type[FakeBar]) -> None:
    output = Terminal()
    train(ProgressBar(stream=output), epochs=2)
    assert len(fake_tqdm.made) == 2
    first = fake_tqdm.made[0]
    assert first.kwargs["total"] == 3
    assert first.kwargs["desc"] == "epoch 0 (1/2)"
    assert first.kwargs["file"] is output
    assert first.updates == 3
    assert first.postfix == "loss=0.6111 val_loss=0.25"
    assert all(bar.closed for bar in fake_tqdm.made)


def test_forced_onto_a_file_auto_prints_plain_lines_even_with_tqdm(fake_tqdm: type[FakeBar]) -> None:
    output = io.StringIO()
    train(ProgressBar(force=True, stream=output), epochs=1)
    assert fake_tqdm.made == []
    assert output.getvalue() == "epoch 0 (1/1) loss=0.6111 val_loss=0.25\n"


def test_a_failure_closes_the_bar(fake_tqdm: type[FakeBar]) -> None:
    bar = ProgressBar(stream=Terminal())
    bar.on_train_start(epochs=1, control=TrainingControl())
    bar.on_epoch_start(0)
    bar.on_exception(RuntimeError("boom"))
    assert fake_tqdm.made[0].closed


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"force": "yes"}, "force"),
        ({"backend": "rich"}, "backend"),
        ({"stream": "stdlog"}, "stream"),
        ({"stream": 3}, "stream"),
        ({"refresh_seconds": -1}, "refresh_seconds"),
        ({"digits": "4"}, "digits"),
    ],
)
def test_bad_parameters_are_refused_naming_the_plugin_and_the_parameter(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        ProgressBar(**params)
    assert (caught.value.plugin, caught.value.parameter) == ("progress_bar", parameter)
