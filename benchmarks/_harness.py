"""Side-by-side measurements that judge themselves: every case names its baselines and the ratios it promises.

A :class:`Case` measures a few contenders in interleaved rounds, so that drift and the other processes of a shared
machine hit them alike, and keeps every sample. Its :class:`Target`\\ s say "this contender costs at most R times that
baseline"; the verdict compares the ratio of the best samples (the round least disturbed by the machine) with R, in
the same run. When a target is missed, the case's ``explain`` function says why, from numbers of the same run: a
reason is computed, never written in advance.

The quick pass (``--quick``, ``tox -e bench-quick`` in CI) runs the cases marked ``quick`` with fewer and shorter
rounds and judges each ratio against ``slack`` times its target (2 by default): loose enough for a noisy 2-core
machine, tight enough to catch an order-of-magnitude regression.

Adding a case (memory, first call after a change, a bridge...): write ``measure(budget) -> {contender: samples}``
(or use :func:`timed` for Python statements), wrap it in a :class:`Case` with its targets, return it from the
family module's ``cases(budget)``, and register the module in ``run.py``'s ``FAMILIES``. Samples may be in any unit
(``Case.unit``); a ratio only compares samples of one case.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import timeit
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

Samples = dict[str, list[float]]
"""The samples of each contender of one case (a few rounds each), in the case's unit."""


@dataclass(frozen=True)
class Budget:
    """How long a run may measure: rounds per contender, and the time one timing sample should last."""

    quick: bool = False
    rounds: int = 9
    sample_seconds: float = 0.02
    slack: float = 1.0
    """The bound of a verdict is ``slack * target``: 1 for the published run, looser for the quick pass in CI."""
    repeats: int = 3
    """A case that misses a target is measured again, up to this many times in all, its rounds pooled: a burst of
    load from the rest of the machine (or a slow first use) does not make a miss, a regression misses every time."""


FULL = Budget(repeats=5)
QUICK = Budget(quick=True, rounds=5, sample_seconds=0.004, slack=2.0, repeats=5)


@dataclass(frozen=True)
class Target:
    """A promise of one case: ``contender`` costs at most ``ratio`` times ``baseline``, measured in the same run."""

    contender: str
    baseline: str
    ratio: float


@dataclass
class Measured:
    """The samples of one case, as its ``explain`` function reads them."""

    samples: Samples

    def best(self, contender: str) -> float:
        """The smallest sample: the round least disturbed by the rest of the machine."""
        return min(self.samples[contender])

    def median(self, contender: str) -> float:
        return statistics.median(self.samples[contender])

    def ratio(self, contender: str, baseline: str) -> float:
        """``best(contender) / best(baseline)``."""
        return _divide(self.best(contender), self.best(baseline))


@dataclass
class Case:
    """One benchmark case: contenders measured side by side, and the targets that judge them."""

    family: str
    name: str
    measure: Callable[[Budget], Samples]
    targets: tuple[Target, ...]
    explain: Callable[[Measured, Target], str] | None = None
    """Why ``target`` is missed, from this run's samples; called only for a missed target."""
    unit: str = "us"
    quick: bool = True
    """Part of the quick pass."""


@dataclass
class Row:
    """One contender's samples, summarised."""

    family: str
    case: str
    contender: str
    best: float
    median: float
    unit: str


@dataclass
class Verdict:
    """One target judged by one run."""

    family: str
    case: str
    contender: str
    baseline: str
    target: float
    bound: float
    ratio: float | None
    median_ratio: float | None
    met: bool | None
    """``None`` when a contender could not be measured (an optional package is missing): neither met nor missed."""
    reason: str = ""
    measurements: int = 1
    """How many times the case was measured (more than once when a first measurement missed a target)."""


@dataclass
class Report:
    """Everything one run measured and judged, with the machine it ran on."""

    machine: dict[str, Any] = field(default_factory=dict)
    budget: Budget = FULL
    rows: list[Row] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def missed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.met is False]


def _divide(value: float, base: float) -> float:
    if base > 0:
        return value / base
    return 1.0 if value == base else float("inf")


def judge(case: Case, samples: Samples, budget: Budget) -> list[Verdict]:
    """The verdict of every target of ``case``, from ``samples``; a missed one carries its computed reason."""
    measured = Measured(samples)
    verdicts = []
    for target in case.targets:
        bound = target.ratio * budget.slack
        if target.contender not in samples or target.baseline not in samples:
            where = (case.family, case.name, target.contender, target.baseline)
            verdicts.append(Verdict(*where, target.ratio, bound, None, None, None))
            continue
        ratio = measured.ratio(target.contender, target.baseline)
        median_ratio = _divide(measured.median(target.contender), measured.median(target.baseline))
        met = ratio <= bound
        reason = ""
        if not met:
            reason = case.explain(measured, target) if case.explain is not None else ""
            reason = reason or (
                f"no cause is measured for this case; the ratio of medians is {median_ratio:.2f}, of the best "
                f"rounds {ratio:.2f}"
            )
        verdicts.append(
            Verdict(
                case.family,
                case.name,
                target.contender,
                target.baseline,
                target.ratio,
                bound,
                ratio,
                median_ratio,
                met,
                reason,
            )
        )
    return verdicts


def run_cases(cases: list[Case], budget: Budget, report: Report, *, log: Callable[[str], None] | None = None) -> None:
    """Measure each case (the quick ones only in a quick pass) and add its rows and verdicts to ``report``."""
    for case in cases:
        if budget.quick and not case.quick:
            continue
        each = [case.measure(budget)]
        samples = each[0]
        while len(each) < budget.repeats and any(verdict.met is False for verdict in judge(case, samples, budget)):
            each.append(case.measure(budget))
            samples = {name: values + each[-1].get(name, []) for name, values in samples.items()}
        measurements = len(each)
        for contender, values in samples.items():
            report.rows.append(
                Row(case.family, case.name, contender, min(values), statistics.median(values), case.unit)
            )
        verdicts = judge(case, samples, budget)
        for verdict in verdicts:
            verdict.measurements = measurements
            if verdict.met is False and measurements > 1:  # how steady the miss is, measurement by measurement
                ratios = [Measured(one).ratio(verdict.contender, verdict.baseline) for one in each]
                verdict.reason += f" (the ratio in each measurement: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
        report.verdicts.extend(verdicts)
        if log is not None:
            for verdict in verdicts:
                if verdict.met is False:
                    log(f"missed: {_describe(verdict)}")


def timed(statements: dict[str, str], namespace: dict[str, Any], budget: Budget) -> Samples:
    """Microseconds per execution of each statement, in interleaved rounds whose order rotates.

    Each statement gets its own repeat count, so that one sample lasts about ``budget.sample_seconds`` whatever it
    costs: a regression makes the run slower by the sample time, not by its own factor.
    """
    timers = {name: timeit.Timer(statement, globals=namespace) for name, statement in statements.items()}
    numbers = {name: _calibrate(timer, budget.sample_seconds) for name, timer in timers.items()}
    for name, timer in timers.items():  # one untimed sample each, after every contender's first use
        timer.timeit(numbers[name])
    samples: Samples = {name: [] for name in timers}
    names = list(timers)
    for round_ in range(budget.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timers[name].timeit(numbers[name]) / numbers[name] * 1e6)
    return samples


def _calibrate(timer: timeit.Timer, seconds: float) -> int:
    """How many executions last about ``seconds`` (this also warms up: dispatchers compiled, caches filled)."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= seconds / 5 or number >= 10**8:
            return max(1, round(number * seconds / max(elapsed, 1e-9)))
        number *= 10


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = ", load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())
    except (AttributeError, OSError):
        load = ""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": f"{os.cpu_count() or 1}{load}",
    }


# -- reports -----------------------------------------------------------------------------------------------------


def _describe(verdict: Verdict) -> str:
    ratio = "not measured" if verdict.ratio is None else f"{verdict.ratio:.2f}x"
    text = f"{verdict.case}: {verdict.contender} / {verdict.baseline} = {ratio}, target <= {verdict.target:g}"
    if verdict.bound != verdict.target:
        text += f" (bound {verdict.bound:g})"
    if verdict.measurements > 1:
        text += f", the best rounds of {verdict.measurements} measurements pooled"
    return text + (f"; why: {verdict.reason}" if verdict.reason else "")


def summary(report: Report) -> str:
    """One paragraph: how many targets, how many met, and each missed one with its reason."""
    judged = [verdict for verdict in report.verdicts if verdict.met is not None]
    unmeasured = len(report.verdicts) - len(judged)
    missed = report.missed
    kind = f"quick pass, bounds {report.budget.slack:g}x the targets" if report.budget.quick else "full run"
    lines = [f"{len(report.verdicts)} targets ({kind}): {len(judged) - len(missed)} met, {len(missed)} missed"]
    if unmeasured:
        lines[0] += f", {unmeasured} not measured (a contender's package is missing)"
    lines += [f"  MISSED {_describe(verdict)}" for verdict in missed]
    return "\n".join(lines)


PLOTS = Path("_static") / "benchmarks"
"""Where the plots go, relative to each Markdown file written: the page refers to them by this relative path."""


def write(report: Report, out_dir: Path, markdown: Path | None) -> str:
    """Write the report as JSON and Markdown into ``out_dir`` (and the Markdown to ``markdown``); return it.

    The plots (SVG) are written beside each Markdown file, in ``_static/benchmarks/`` (``docs/_static/benchmarks/``
    for ``--markdown docs/benchmarks.md``), where the page's images point.
    """
    from ._plots import figures

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": report.machine,
        "budget": asdict(report.budget),
        "verdicts": [asdict(verdict) for verdict in report.verdicts],
        "rows": [asdict(row) for row in report.rows],
    }
    (out_dir / "benchmarks.json").write_text(json.dumps(data, indent=2) + "\n")
    drawn = figures(report.rows)
    plots = {f"{PLOTS.as_posix()}/{name}.svg": title for name, (title, _) in drawn.items()}
    text = to_markdown(report, plots)
    for page in (out_dir / "benchmarks.md", *([markdown] if markdown is not None else [])):
        folder = page.parent / PLOTS
        if drawn:
            folder.mkdir(parents=True, exist_ok=True)
        for name, (_, svg) in drawn.items():
            (folder / f"{name}.svg").write_text(svg)
        page.write_text(text)
    return text


def _cell(text: str) -> str:
    """Text for a Markdown table cell (names put ``**kwargs`` between backticks, which need no escape)."""
    return text.replace("|", "\\|")


def _ratio(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


SHOWN = 3
"""How many of a target's missed cases the summary names (the tables below name them all)."""


def summary_table(report: Report) -> list[str]:
    """One row per target of each family (a target shared by several cases once): its ratios and whether it is met.

    A target is a contender, a baseline and a bound; the row gives the range of its ratios over the cases, how many
    cases met it, and names the first ``SHOWN`` cases that missed it (the tables that follow name every one).
    """
    groups: dict[tuple[str, str, str, float], list[Verdict]] = {}
    for verdict in report.verdicts:
        groups.setdefault((verdict.family, verdict.contender, verdict.baseline, verdict.target), []).append(verdict)
    lines = ["| family | target | cases | ratio (best rounds) | met |", "| --- | --- | ---: | --- | --- |"]
    for (family, contender, baseline, target), verdicts in groups.items():
        ratios = sorted(verdict.ratio for verdict in verdicts if verdict.ratio is not None)
        if not ratios:
            ratio = "not measured"
        elif len(ratios) == 1 or ratios[0] == ratios[-1]:
            ratio = _ratio(ratios[0])
        else:
            ratio = f"{ratios[0]:.2f} to {ratios[-1]:.2f}"
        judged = [verdict for verdict in verdicts if verdict.met is not None]
        missed = [verdict for verdict in judged if not verdict.met]
        if not judged:
            met = "not measured"
        elif len(judged) == 1:
            met = "yes" if judged[0].met else f"**no**: {_cell(judged[0].case)}"
        elif missed:
            named = "; ".join(f"{_cell(verdict.case)} ({_ratio(verdict.ratio)})" for verdict in missed[:SHOWN])
            more = f"; and {len(missed) - SHOWN} more, below" if len(missed) > SHOWN else ""
            met = f"**no**, met by {len(judged) - len(missed)} of {len(judged)}; missed by {named}{more}"
        else:
            met = f"yes, all {len(judged)}"
        slack = "" if report.budget.slack == 1 else f" (x{report.budget.slack:g})"
        lines.append(
            f"| {_cell(family)} | {_cell(contender)} / {_cell(baseline)} <= {target:g}{slack} | {len(verdicts)} | "
            f"{ratio} | {met} |"
        )
    return lines


def to_markdown(report: Report, plots: dict[str, str] | None = None) -> str:
    """The page: a summary of every target, the plots (``{relative path: title}``), then every case's table."""
    judged = [verdict for verdict in report.verdicts if verdict.met is not None]
    missed = report.missed
    lines = [
        "# Benchmarks",
        "",
        "Written by `tox -e bench` (`python -m benchmarks.run`), which exits non-zero when a target is missed. Each "
        "case times its contenders in interleaved rounds of the same run; a ratio divides the best rounds of two "
        "contenders (the rounds least disturbed by the rest of the machine), and a target says how large it may be. "
        "The reason given for a missed target is computed from the numbers of the same run. Times are per call "
        "(dispatch) or per process (discovery, import). CI runs the quick pass, `tox -e bench-quick`, with bounds "
        "twice the targets.",
        "",
        "Machine: " + ", ".join(f"{key} {value}" for key, value in report.machine.items()),
        "",
        f"**{len(judged) - len(missed)} of {len(judged)} targets met, {len(missed)} missed** "
        f"({'quick pass' if report.budget.quick else 'full run'}: {report.budget.rounds} rounds).",
        "",
        "## Summary",
        "",
        "Each target once, with the range of its ratios over the cases it judges; every case is in the tables below.",
        "",
        *summary_table(report),
        "",
    ]
    if plots:
        lines += ["## Plots", "", "Each point is a contender's best round; both axes are logarithmic.", ""]
        lines += [f"![{title}]({path})\n" for path, title in plots.items()]
    families: dict[str, None] = dict.fromkeys(verdict.family for verdict in report.verdicts)
    for family in families:
        verdicts = [verdict for verdict in report.verdicts if verdict.family == family]
        lines += [f"## {family}", "", "| case | ratio | best rounds | medians | target | met |"]
        lines.append("| --- | --- | ---: | ---: | ---: | --- |")
        for verdict in verdicts:
            best = "" if verdict.ratio is None else f"{verdict.ratio:.2f}"
            median = "" if verdict.median_ratio is None else f"{verdict.median_ratio:.2f}"
            met = {True: "yes", False: "**no**", None: "not measured"}[verdict.met]
            slack = "" if verdict.bound == verdict.target else f" (x{report.budget.slack:g})"
            bound = f"<= {verdict.target:g}{slack}"
            lines.append(
                f"| {_cell(verdict.case)} | {_cell(verdict.contender)} / {_cell(verdict.baseline)} | {best} | "
                f"{median} | {bound} | {met} |"
            )
        reasons = [verdict for verdict in verdicts if verdict.met is False]
        if reasons:
            lines += ["", "Missed, and why (computed from this run):", ""]
            lines += [
                f"- {verdict.case}, {verdict.contender} / {verdict.baseline} = {verdict.ratio:.2f}: {verdict.reason}"
                for verdict in reasons
            ]
        rows = [row for row in report.rows if row.family == family]
        lines += ["", f"### {family}: every contender", "", "| case | contender | best | median | unit |"]
        lines.append("| --- | --- | ---: | ---: | --- |")
        lines += [
            f"| {_cell(row.case)} | {_cell(row.contender)} | {row.best:.3f} | {row.median:.3f} | {row.unit} |"
            for row in rows
        ]
        lines.append("")
    return "\n".join(lines)
