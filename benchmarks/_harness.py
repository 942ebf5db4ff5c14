"""Side-by-side measurements that judge themselves: every case names its baselines and the ratios it promises.

A :class:`Case` measures a few contenders and keeps every sample. Its :class:`Target`\\ s say "this contender costs
at most R times that baseline"; the verdict compares the ratio of the best samples with R, in the same run. When a
target is missed, the case's ``explain`` function says why, from numbers of the same run: a reason is computed, never
written in advance.

Two measures, each judged on its own:

* **instructions** (a case's ``counted`` statements, :mod:`benchmarks._callgrind`): the instructions per execution
  that callgrind counts, one valgrind process for a family's cases. Load cannot move them, so a ratio is judged
  against its target itself, plus ``margin`` (2%: what the layout of memory may shift between two builds of the same
  code). The quick pass (``--quick``, ``tox -e bench-quick`` in CI) judges these only, wherever a case has them, and
  fails when valgrind is missing.
* **wall clock** (``measure``, often :func:`timed`): interleaved rounds, so that drift and the other processes of a
  shared machine hit the contenders alike; the best round is the one least disturbed. A ratio is judged against
  ``slack`` times its target (1 in the full run; 2 in the quick pass, for the cases it can only time: processes).

Adding a case: for Python statements, write a module-level builder that returns their namespace and use
:func:`statements_case` (both measures, from the same statements); otherwise write ``measure(budget) ->
{contender: samples}`` and wrap it in a :class:`Case` with its targets. Return it from the family module's
``cases(budget)``, and register the module in ``run.py``'s ``FAMILIES``. Samples may be in any unit (``Case.unit``);
a ratio only compares samples of one case and one measure.
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
from typing import Any, Callable, Optional

from ._callgrind import Counted, Scripts, ValgrindMissing, count, count_scripts

Samples = dict[str, list[float]]
"""The samples of each contender of one case (a few rounds each), in the case's unit."""
Logger = Optional[Callable[[str], None]]
INSTRUCTIONS = "instructions"
"""The unit of callgrind's counts (per execution of a statement)."""


@dataclass(frozen=True)
class Budget:
    """How long a run may measure: rounds per contender, and the time one timing sample should last."""

    quick: bool = False
    rounds: int = 9
    sample_seconds: float = 0.02
    slack: float = 1.0
    """The bound of a wall-clock verdict is ``slack * target``: 1 for the published run, 2 for the quick pass."""
    repeats: int = 3
    """A case that misses a wall-clock target is measured again, up to this many times in all, its rounds pooled: a
    burst of load from the rest of the machine (or a slow first use) does not make a miss, a regression misses every
    time. Instruction counts are measured once: they repeat."""
    counted_rounds: int = 3
    """Rounds of each counted statement, in one valgrind process."""
    counted_seconds: float = 0.1
    """CPU time of one counted loop under callgrind (about 20 million instructions a second)."""
    margin: float = 0.02
    """The bound of an instruction-count verdict is ``(1 + margin) * target``, in every run."""


FULL = Budget(repeats=5)
QUICK = Budget(quick=True, rounds=5, sample_seconds=0.004, slack=2.0, repeats=5, counted_rounds=2, counted_seconds=0.05)


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
    unit: str = "us"

    def show(self, value: float) -> str:
        """``value`` with its unit: ``"1.234 us"``, ``"1,234 instructions"``."""
        if self.unit == INSTRUCTIONS:
            return f"{value:,.0f} instructions"
        return f"{value:.3f} {self.unit}"

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
    measure: Callable[[Budget], Samples] | None
    """The wall-clock (or other) samples; ``None`` when the case is counted only."""
    targets: tuple[Target, ...]
    explain: Callable[[Measured, Target], str] | None = None
    """Why ``target`` is missed, from this run's samples (of either measure); called only for a missed target."""
    unit: str = "us"
    """The unit of ``measure``'s samples."""
    quick: bool = True
    """Part of the quick pass."""
    counted: Counted | Scripts | None = None
    """Statements (or whole operations, each in a fresh process) whose instructions are counted: the same targets
    are judged on those counts too."""


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
    unit: str = "us"
    """The unit of the samples judged: ``"instructions"`` for callgrind's counts."""


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


def bound(target: Target, unit: str, budget: Budget) -> float:
    """The largest ratio that meets ``target``: ``(1 + margin)`` times it for instruction counts, ``slack`` times it
    for wall-clock samples."""
    if unit == INSTRUCTIONS:
        return round(target.ratio * (1 + budget.margin), 6)
    return target.ratio * budget.slack


def judge(case: Case, samples: Samples, budget: Budget, unit: str | None = None) -> list[Verdict]:
    """The verdict of every target of ``case``, from ``samples`` (in ``unit``, the case's own by default); a missed
    one carries its computed reason."""
    unit = case.unit if unit is None else unit
    measured = Measured(samples, unit)
    verdicts = []
    for target in case.targets:
        limit = bound(target, unit, budget)
        if target.contender not in samples or target.baseline not in samples:
            where = (case.family, case.name, target.contender, target.baseline)
            verdicts.append(Verdict(*where, target.ratio, limit, None, None, None, unit=unit))
            continue
        ratio = measured.ratio(target.contender, target.baseline)
        median_ratio = _divide(measured.median(target.contender), measured.median(target.baseline))
        met = ratio <= limit
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
                limit,
                ratio,
                median_ratio,
                met,
                reason,
                unit=unit,
            )
        )
    return verdicts


def run_cases(cases: list[Case], budget: Budget, report: Report, *, log: Callable[[str], None] | None = None) -> None:
    """Measure each case (the quick ones only in a quick pass) and add its rows and verdicts to ``report``.

    The counted statements of all the cases are counted first, in one batch of valgrind processes; then each case
    gets its instruction-count verdicts and, outside the quick pass (or when it has no counted statements), its
    wall-clock ones. Without valgrind, the quick pass stops with :class:`ValgrindMissing`; the full run reports the
    instruction-count targets as not measured.
    """
    selected = [case for case in cases if case.quick or not budget.quick]
    counted_cases = [case for case in selected if case.counted is not None]
    try:
        jobs = [case.counted for case in counted_cases if isinstance(case.counted, Counted)]
        statements = iter(count(jobs, budget.counted_rounds, seconds=budget.counted_seconds))
        counts = [
            count_scripts(case.counted) if isinstance(case.counted, Scripts) else next(statements)
            for case in counted_cases
        ]
    except ValgrindMissing as missing:
        if budget.quick:
            raise
        if log is not None and counted_cases:
            log(f"instruction counts not measured: {missing}")
        counts = [{} for _ in counted_cases]
    counted = {id(case): samples for case, samples in zip(counted_cases, counts)}
    for case in selected:
        if id(case) in counted:
            samples = counted[id(case)]
            _add(report, case, samples, judge(case, samples, budget, INSTRUCTIONS), unit=INSTRUCTIONS, log=log)
        if case.measure is not None and not (budget.quick and id(case) in counted):
            _measure(case, budget, report, log)


def _add(report: Report, case: Case, samples: Samples, verdicts: list[Verdict], *, unit: str, log: Logger) -> None:
    for contender, values in samples.items():
        report.rows.append(Row(case.family, case.name, contender, min(values), statistics.median(values), unit))
    report.verdicts.extend(verdicts)
    if log is not None:
        for verdict in verdicts:
            if verdict.met is False:
                log(f"missed: {_describe(verdict)}")


def _measure(case: Case, budget: Budget, report: Report, log: Callable[[str], None] | None) -> None:
    """The wall-clock (or other) samples of ``case``, measured again while a target is missed."""
    measure = case.measure
    if measure is None:
        return
    each = [measure(budget)]
    samples = each[0]
    while len(each) < budget.repeats and any(verdict.met is False for verdict in judge(case, samples, budget)):
        each.append(measure(budget))
        samples = {name: values + each[-1].get(name, []) for name, values in samples.items()}
    measurements = len(each)
    verdicts = judge(case, samples, budget)
    for verdict in verdicts:
        verdict.measurements = measurements
        if verdict.met is False and measurements > 1:  # how steady the miss is, measurement by measurement
            ratios = [Measured(one).ratio(verdict.contender, verdict.baseline) for one in each]
            verdict.reason += f" (the ratio in each measurement: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
    _add(report, case, samples, verdicts, unit=case.unit, log=log)


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


def statements_case(
    family: str,
    name: str,
    builder: Callable[..., dict[str, Any]],
    args: tuple[Any, ...],
    *,
    statements: dict[str, str],
    targets: tuple[Target, ...],
    explain: Callable[[Measured, Target], str] | None = None,
    quick: bool = True,
    timed_only: tuple[str, ...] = (),
    counted_args: tuple[Any, ...] | None = None,
) -> Case:
    """A case of Python statements measured both ways, in a namespace that ``builder(*args)`` returns: their
    instructions counted in a valgrind process, and their wall-clock time here.

    ``builder`` is a module-level function (the valgrind process imports it), ``args`` JSON values. The contenders
    in ``timed_only`` are timed but not counted, and the valgrind process builds its namespace from ``counted_args``
    when given: for a peer whose import alone would take minutes under valgrind (Keras imports JAX).
    """

    def measure(budget: Budget) -> Samples:
        return timed(statements, builder(*args), budget)

    counted_statements = {name: statement for name, statement in statements.items() if name not in timed_only}
    counted = Counted.of(builder, args if counted_args is None else counted_args, counted_statements)
    return Case(family, name, measure, targets, explain, quick=quick, counted=counted)


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


def _measure_name(unit: str) -> str:
    return INSTRUCTIONS if unit == INSTRUCTIONS else "wall clock" if unit == "us" else unit


def _describe(verdict: Verdict) -> str:
    ratio = "not measured" if verdict.ratio is None else f"{verdict.ratio:.3f}x"
    text = (
        f"{verdict.case}: {verdict.contender} / {verdict.baseline} = {ratio} ({_measure_name(verdict.unit)}), "
        f"target <= {verdict.target:g}"
    )
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
    margin = f"instruction counts within {report.budget.margin:.0%} of the targets"
    kind = f"quick pass, {margin}, times within {report.budget.slack:g}x" if report.budget.quick else "full run"
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


def _number(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == INSTRUCTIONS else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def _slack(verdict: Verdict, budget: Budget) -> str:
    """How the bound differs from the target: `` (+2%)`` for instruction counts, `` (x2)`` for a quick pass's times."""
    if verdict.bound == verdict.target:
        return ""
    if verdict.unit == INSTRUCTIONS:
        return f" (+{budget.margin:.0%})"
    return f" (x{budget.slack:g})"


SHOWN = 3
"""How many of a target's missed cases the summary names (the tables below name them all)."""


def summary_table(report: Report) -> list[str]:
    """One row per target of each family (a target shared by several cases once): its ratios and whether it is met.

    A target is a contender, a baseline and a bound; the row gives the range of its ratios over the cases, how many
    cases met it, and names the first ``SHOWN`` cases that missed it (the tables that follow name every one).
    """
    groups: dict[tuple[str, str, str, float, str], list[Verdict]] = {}
    for verdict in report.verdicts:
        key = (verdict.family, verdict.contender, verdict.baseline, verdict.target, verdict.unit)
        groups.setdefault(key, []).append(verdict)
    lines = [
        "| family | target | measure | cases | ratio (best rounds) | met |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    for (family, contender, baseline, target, unit), verdicts in groups.items():
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
        slack = _slack(verdicts[0], report.budget)
        lines.append(
            f"| {_cell(family)} | {_cell(contender)} / {_cell(baseline)} <= {target:g}{slack} | "
            f"{_measure_name(unit)} | {len(verdicts)} | {ratio} | {met} |"
        )
    return lines


def to_markdown(report: Report, plots: dict[str, str] | None = None) -> str:
    """The page: a summary of every target, the plots (``{relative path: title}``), then every case's table."""
    judged = [verdict for verdict in report.verdicts if verdict.met is not None]
    missed = report.missed
    lines = [
        "# Benchmarks",
        "",
        "Written by `tox -e bench` (`python -m benchmarks.run`), which exits non-zero when a target is missed. A "
        "target says how large the ratio of two contenders may be, measured in the same run; the reason given for a "
        "missed target is computed from the numbers of the same run. Cases of Python statements are measured two "
        "ways: **instructions**, counted by `valgrind --tool=callgrind` (instructions per execution, each statement "
        "looped between two dumps of the counters, the same empty loop subtracted), which the load of the machine "
        "cannot move, judged against the target plus a 2% margin; and **wall clock**, interleaved rounds whose best "
        "(the round least disturbed by the rest of the machine) is judged against the target. Times are per call "
        "(dispatch) or per process (discovery, import). CI runs the quick pass, `tox -e bench-quick`: the "
        "instruction counts, and the cases that can only be timed against twice their targets.",
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
        lines += [f"## {family}", "", "| case | ratio | measure | best rounds | medians | target | met |"]
        lines.append("| --- | --- | --- | ---: | ---: | ---: | --- |")
        for verdict in verdicts:
            best = "" if verdict.ratio is None else f"{verdict.ratio:.2f}"
            median = "" if verdict.median_ratio is None else f"{verdict.median_ratio:.2f}"
            met = {True: "yes", False: "**no**", None: "not measured"}[verdict.met]
            bound = f"<= {verdict.target:g}{_slack(verdict, report.budget)}"
            lines.append(
                f"| {_cell(verdict.case)} | {_cell(verdict.contender)} / {_cell(verdict.baseline)} | "
                f"{_measure_name(verdict.unit)} | {best} | {median} | {bound} | {met} |"
            )
        reasons = [verdict for verdict in verdicts if verdict.met is False]
        if reasons:
            lines += ["", "Missed, and why (computed from this run):", ""]
            lines += [
                f"- {verdict.case}, {verdict.contender} / {verdict.baseline} ({_measure_name(verdict.unit)}) = "
                f"{verdict.ratio:.2f}: {verdict.reason}"
                for verdict in reasons
            ]
        rows = [row for row in report.rows if row.family == family]
        lines += ["", f"### {family}: every contender", "", "| case | contender | best | median | unit |"]
        lines.append("| --- | --- | ---: | ---: | --- |")
        lines += [
            f"| {_cell(row.case)} | {_cell(row.contender)} | {_number(row.best, row.unit)} | "
            f"{_number(row.median, row.unit)} | {row.unit} |"
            for row in rows
        ]
        lines.append("")
    return "\n".join(lines)
