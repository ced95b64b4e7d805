"""Points: the one evaluation engine under every analysis verb.

A *point* is a set of dotted-key overrides of a base scenario (`{"sales.reps": 6}`; `{}`
is the base itself). `evaluate` runs every point on the same replication seeds through
the experiment engine (`gtmsim.experiment`), so the verbs share its common random
numbers, executors (in-process, local processes, Dask), resumable results folder,
manifest, progress and long-work checks — none has a private loop:

    exp = evaluate("baseline", [{}, {"sales.reps": 6}], reps=4, months=12,
                   overrides={"market.prospects": 5000}, kind="sensitivity", out="results/s")
    y = outcome_matrix(exp, "cumulative_bookings")   # points × replications

Runs carry a `point` column (the index into `points`); replication r of every point ran
on `exp.seeds[r]`. The manifest records the points under `points` (part of the
experiment's identity: `resume` refuses a folder evaluated on other points). A verb then
writes its own files beside the runs with `write_outputs`, which also records the verb's
section in the manifest.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gtmsim import experiment as _exp
from gtmsim.experiment import OUTCOMES, Experiment, ExperimentError
from gtmsim.results import (
    MANIFEST,
    ResultsError,
    atomic_write_many,
    json_writer,
    read_manifest,
    read_parquet,
)
from gtmsim.scenario import Scenario, ScenarioError, scenario_from_dict, with_changes

POINT = "point"  # the runs' column holding each run's point index
MAX_POINTS = _exp.MAX_GRID_POINTS
OUTCOME_NAMES = tuple(o.name for o in OUTCOMES)


def outcome(name: str) -> _exp.Outcome:
    """The key outcome called `name` (see `gtmsim.experiment.OUTCOMES`).

    Raises:
        ScenarioError: an unknown name, with the nearest one.
    """
    for o in OUTCOMES:
        if o.name == name:
            return o
    import difflib

    near = difflib.get_close_matches(str(name), OUTCOME_NAMES, n=1, cutoff=0.5)
    hint = f"; did you mean '{near[0]}'?" if near else f"; expected one of {', '.join(OUTCOME_NAMES)}"
    raise ScenarioError([f"--outcome {name}: unknown outcome{hint}"])


def evaluate(
    base: Scenario | str | Path,
    points: Sequence[Mapping[str, Any]],
    *,
    reps: int = 10,
    seed: int | None = None,
    months: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: cf.Executor | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    command: Sequence[str] | None = None,
    yes: bool = False,
    kind: str = "points",
    outputs: Sequence[str] = (),
    draws: Sequence[Mapping[str, Any]] | None = None,
) -> Experiment:
    """Run every point × `reps` replications on common random numbers.

    Args:
        base: a `Scenario`, file or shipped name; each point's overrides apply to it.
        points: dotted key -> value per point; point 0 is the reference of
            `Experiment.summary()`. Values may be tables (`{"marketing.programs.x": {...}}`).
        kind: the verb, recorded as the folder's kind ("explain", "sensitivity",
            "optimize", or "points").
        outputs: the verb's own files in `out`, removed first with `force` (so that an
            interrupted replacement never leaves old results beside new runs).
        draws: one mapping of dotted keys per replication (`posterior_draws`): replication
            r of every point runs with `draws[r]` set on top of the point's keys.
        reps, seed, months, overrides, workers, scheduler, executor, out, resume, force,
        progress, command, yes: as for `gtmsim.experiment.compare`.

    Returns:
        The `Experiment`; its `keys` are `("point",)` and `arms[i]` is point i's scenario.

    Raises:
        ScenarioError: points that do not make valid scenarios, all of them at once,
            each message led by the point's index.
        ExperimentError, ResultsError: as for `compare`.
    """
    if kind not in ("points", "explain", "sensitivity", "optimize"):
        raise ExperimentError(f"evaluate: kind: expected points, explain, sensitivity or "
                              f"optimize, got {kind!r}")
    if isinstance(points, Mapping) or not isinstance(points, Sequence) or not points or not all(
            isinstance(p, Mapping) for p in points):
        raise ExperimentError("evaluate: points: expected a non-empty list of mappings of dotted "
                              f"keys to values, e.g. [{{}}, {{'sales.reps': 6}}], got {points!r}")
    if len(points) > MAX_POINTS:
        raise ExperimentError(f"evaluate: {len(points):,} points, more than the {MAX_POINTS:,} "
                              "an experiment may have")
    _exp._check_options(reps=reps, seed=seed, months=months, workers=workers,
                        scheduler=scheduler, executor=executor)
    start = _exp._overridden(base, overrides)
    arms = scenarios_of(start, points)
    if force and out is not None and Path(out).is_dir():
        for name in outputs:
            try:
                (Path(out) / name).unlink(missing_ok=True)
            except OSError as exc:
                raise ResultsError(f"{Path(out) / name}: cannot remove ({exc.strerror or exc})") \
                    from None
    index = [{POINT: i} for i in range(len(arms))]
    return _exp._run(kind, [start], arms, index, reps=reps, seed=seed, months=months,
                     identity_extra={"vary": None, "points": _exp._jsonable(list(points))},
                     overrides=overrides, workers=workers, scheduler=scheduler,
                     executor=executor, out=out, resume=resume, force=force, progress=progress,
                     command=command, yes=yes, draws=draws)


def posterior_draws(folder: str | Path, reps: int, seed: int | tuple[int, ...],
                    taken: Mapping[str, str] | None = None,
                    check: Scenario | None = None,
                    ) -> tuple[list[str], list[dict[str, Any]]]:
    """One joint draw of a calibration's fitted keys per replication.

    The draws are a weighted resampling of the calibration's `posterior.parquet`, seeded
    by `seed` (an int or a tuple of ints for `numpy.random.default_rng`), so the same seed
    gives the same draws; a key fitted as a whole number gets a whole number. Replication
    r of every point then runs on seed r *and* draw r: paired differences stay paired,
    and their intervals carry what the calibration left uncertain about the market.

    Args:
        taken: keys (or tables of keys) the verb sets itself -> what sets them (e.g.
            "--set"); a fitted key among them, or under one, is refused, since the draw
            would overwrite the verb's value.
        check: a scenario each distinct draw must make valid (a fitted key it does not have,
            or a value it refuses, is reported before anything runs).

    Returns:
        The fitted keys, and `reps` mappings of them to values.

    Raises:
        ScenarioError: the folder is not a finished calibration, or a fitted key is taken
            (every problem at once).
    """
    from gtmsim.analysis.sensitivity import posterior_sample, read_posterior

    fits, post = read_posterior(folder)
    problems = []
    for f in fits:
        by = next((what for key, what in (taken or {}).items()
                   if f.key == key or f.key.startswith(key + ".")), None)
        if by is not None:
            problems.append(f"--posterior {folder}: {f.key} is fitted by the calibration and "
                            f"also set by {by}; leave one of them out")
    if problems:
        raise ScenarioError(problems)
    keys = [f.key for f in fits]
    x = posterior_sample(post, keys, reps, seed)
    draws = [{f.key: int(round(v)) if f.integer else float(v)
              for f, v in zip(fits, row, strict=True)} for row in x]
    if check is not None:
        for draw in dict.fromkeys(tuple(d.items()) for d in draws):  # distinct, in order
            try:
                with_changes(check, dict(draw), f"--posterior {folder}")
            except ScenarioError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
        if problems:
            raise ScenarioError(problems)
    return keys, draws


def set_keys(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, str]:
    """The keys `overrides` (`--set`) sets -> "--set", for `posterior_draws(taken=)`."""
    from gtmsim.scenario import _override_pairs

    pairs, _ = _override_pairs(overrides if isinstance(overrides, Mapping)
                               else list(overrides or []))
    return {key: "--set" for key, _ in pairs}


def scenarios_of(base: Scenario, points: Sequence[Mapping[str, Any]]) -> list[Scenario]:
    """The scenario of each point: `base` with the point's keys set and validated.

    Raises:
        ScenarioError: every problem of every point, led by `point i` (the first eight
            points with problems, then a count).
    """
    arms: list[Scenario] = []
    problems: list[str] = []
    bad = 0
    for i, point in enumerate(points):
        try:
            arms.append(with_changes(base, dict(point), f"point {i}") if point else base)
        except ScenarioError as exc:
            bad += 1
            if bad <= 8:
                problems.extend(p for p in exc.problems if p not in problems)
    if bad > 8:
        problems.append(f"... and {bad - 8} more points with problems")
    if problems:
        raise ScenarioError(problems)
    return arms


def outcome_matrix(experiment: Experiment, name: str,
                   per_run: pd.DataFrame | None = None) -> np.ndarray:
    """One outcome as an array of points × replications (NaN where a run has none).

    Args:
        per_run: `experiment.outcomes()`, when already computed.
    """
    outcome(name)
    table = experiment.outcomes() if per_run is None else per_run
    wide = table.pivot(index=POINT, columns="replication", values=name)
    wide = wide.reindex(index=range(len(experiment.arms)), columns=range(len(experiment.seeds)))
    return wide.to_numpy(dtype=float)


def write_outputs(experiment: Experiment, files: Mapping[str, Callable[[Path], None]],
                  section: Mapping[str, Any]) -> list[Path]:
    """Write a verb's files beside the runs, with the manifest, in one atomic step.

    The manifest gains the verb's `section` under its kind (e.g. `manifest["explain"]`)
    and the files in its list.

    Returns:
        The files written (the manifest last).
    """
    if experiment.folder is None:
        return []
    folder = experiment.folder
    manifest = read_manifest(folder)
    manifest[experiment.kind] = _exp._jsonable(dict(section))
    listed = list(manifest.get("files", []))
    manifest["files"] = [*listed, *(n for n in files if n not in listed)]
    writers = {folder / name: write for name, write in files.items()}
    writers[folder / MANIFEST] = json_writer(manifest)
    atomic_write_many(writers)
    return list(writers)


def read_points(folder: str | Path) -> Experiment:
    """An analysis verb's experiment read back from its results folder.

    Raises:
        ResultsError: the manifest or runs.parquet is missing or malformed.
        ExperimentError: the folder is not an analysis verb's.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("kind") not in ("points", "explain", "sensitivity", "optimize"):
        raise ExperimentError(f"{folder}: not the results folder of an analysis verb "
                              f"(kind {manifest.get('kind')!r})")
    scenarios, points = manifest.get("scenarios"), manifest.get("points")
    seeds, seed = manifest.get("seeds"), manifest.get("seed")
    if (not isinstance(scenarios, list) or len(scenarios) != 1 or not isinstance(points, list)
            or not isinstance(seeds, list) or not isinstance(seed, int)):
        raise ResultsError(f"{folder / MANIFEST}: malformed (expected scenarios, points, seed "
                           "and seeds as gtmsim writes them)")
    base = scenario_from_dict(scenarios[0], str(folder / MANIFEST))
    runs = read_parquet(folder / _exp.RUNS, ["scenario", POINT, "replication", "seed", "month"])
    return Experiment(kind=manifest["kind"], runs=runs, arms=scenarios_of(base, points),
                      keys=(POINT,), seed=seed, seeds=seeds, folder=folder)


def t_interval(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of `x` (NaN dropped; NaN interval below two values)."""
    return _exp._t_interval(np.asarray(x, dtype=float), confidence)


def jsonable(value: Any) -> Any:
    """`value` with NaN as None, for JSON output."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


__all__ = [
    "POINT",
    "evaluate",
    "jsonable",
    "outcome",
    "outcome_matrix",
    "read_points",
    "scenarios_of",
    "t_interval",
    "write_outputs",
]
