"""Scenario files: schema, loading, `extends`, overrides and error reporting.

A scenario is a TOML file validated into a frozen `Scenario`. Loading resolves
`extends` (deep merge, the child wins), applies `--set` style overrides typed by the
schema, and reports every mistake at once, each naming the file that set the key,
the dotted key and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gtmsim.alignment import LEVER_NAMES, PRESETS, Levers, Routing, resolve

Prob = float  # documented alias; ranges are set per field with Field(ge=0, le=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Segment(_Strict):
    """One market segment (e.g. SMB, mid-market, enterprise)."""

    share: float = Field(ge=0, le=1, description="share of prospects in this segment")
    fit_mean: float = Field(0.5, gt=0, lt=1, description="mean fit to the ideal customer profile")
    fit_concentration: float = Field(6.0, gt=0, description="Beta concentration of fit (a + b)")
    deal_value: float = Field(gt=0, description="mean first-year contract value, $")
    deal_value_spread: float = Field(0.5, ge=0, description="log-normal sigma of deal value")
    cycle_days: float = Field(gt=0, description="mean sales-cycle length, days")
    base_win_rate: float = Field(ge=0, le=1, description="win rate of an average deal")


class Network(_Strict):
    """Who talks to whom for word of mouth."""

    kind: Literal["full", "small_world", "clustered"] = "full"
    degree: int = Field(10, ge=2, le=1000, description="contacts per prospect (small_world)")
    rewire: float = Field(0.05, ge=0, le=1, description="share of long-range ties (small_world)")
    homophily: float = Field(0.8, ge=0, le=1, description="share of talk within the segment")


class Market(_Strict):
    """The prospect population."""

    prospects: int = Field(20_000, ge=1, le=20_000_000)
    segments: dict[str, Segment]
    initial_aware: float = Field(0.1, ge=0, le=1, description="share aware at the start")
    in_market_share: float = Field(0.06, ge=0, le=1)
    buying_window_days: float = Field(90, gt=0)
    inbound_propensity: float = Field(0.5, ge=0, le=1)
    trust_half_life_days: float = Field(120, gt=0)
    word_of_mouth: float = Field(0.08, ge=0, le=30, description="talks per spreader per month")
    referral_weight: float = Field(3.0, ge=0, description="customers talk this many times more")
    referral_trust: float = Field(0.15, ge=0, le=1, description="trust gain from a customer's talk")
    network: Network = Network()
    churn_monthly: float = Field(0.01, ge=0, le=1)
    dormant_days: float = Field(180, ge=0)
    lead_patience_days: float = Field(30, gt=0, description="days a lead waits before going cold")
    qualify_rate: float = Field(0.8, ge=0, le=1, description="qualification chance, ideal fresh lead")
    unready_qualify: float = Field(0.1, ge=0, le=1, description="same, for a lead not in market")
    response_decay_days: float = Field(0.5, gt=0, description="scale of lead-interest decay, days")
    response_decay_power: float = Field(0.62, ge=0, le=5, description="power of lead-interest decay")

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> Market:
        total = sum(s.share for s in self.segments.values())
        if not self.segments:
            raise ValueError("segments: at least one segment is required")
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"segments: shares must sum to 1, got {total:g}")
        return self


class Program(_Strict):
    """A marketing program or channel."""

    channel: Literal["content", "social", "email", "paid_ads", "events", "pr", "other"]
    monthly_budget: float = Field(ge=0, description="$ per month")
    cost_per_reach: float = Field(gt=0, description="$ per prospect touch bought")
    carryover: float = Field(0.5, ge=0, lt=1, description="geometric adstock per month")
    saturation: float = Field(1.0, gt=0, description="touches per targeted prospect at half reach")
    saturation_slope: float = Field(1.0, gt=0, le=10)
    segments: list[str] = Field(default_factory=list, description="targeted segments; empty = all")
    reaches: Literal["everyone", "known"] = "everyone"
    awareness: float = Field(0.5, ge=0, le=1)
    trust: float = Field(0.05, ge=0, le=1)
    hand_raise: float = Field(0.0, ge=0, le=1)
    lead_capture: float = Field(0.0, ge=0, le=1)


class Marketing(_Strict):
    programs: dict[str, Program] = Field(default_factory=dict)


class Sales(_Strict):
    """The sales team."""

    reps: int = Field(4, ge=0, le=100_000)
    deal_capacity: int = Field(12, ge=1, description="open opportunities per rep")
    touches_per_day: float = Field(8.0, gt=0)
    touches_per_lead: float = Field(4.0, gt=0, description="touches a first response and qualification take")
    deal_touches_per_day: float = Field(0.25, ge=0, description="rep time one open deal takes")
    outbound_share: float = Field(0.2, ge=0, le=1)
    outbound_success: float = Field(0.15, ge=0, le=1)
    skill_spread: float = Field(0.2, ge=0, le=2)
    ramp_months: float = Field(5.0, ge=0)
    cost_per_rep_month: float = Field(15_000, ge=0)
    segments: list[str] = Field(default_factory=list, description="outbound focus; empty = all")


class Alignment(_Strict):
    """A named preset and any lever set explicitly (explicit levers win)."""

    preset: Literal["siloed", "undefined", "defined", "aligned", "integrated"] = "siloed"
    lead_threshold: float | None = Field(None, ge=0, le=1)
    handoff_days: float | None = Field(None, ge=0, le=90)
    sla_days: float | None = Field(None, ge=0, le=90)
    routing: Routing | None = None
    feedback: float | None = Field(None, ge=0, le=1)
    enablement: float | None = Field(None, ge=0, le=1)
    message_consistency: float | None = Field(None, ge=0, le=1)
    recycling: float | None = Field(None, ge=0, le=1)
    coordination: float | None = Field(None, ge=0, le=0.9)
    marketing_reward: float | None = Field(None, ge=0, le=1)
    # The cost of the alignment work itself (shared tooling, ops staff, joint planning),
    # on top of marketing spend and sales cost; it enters total cost, net bookings and CAC.
    cost_monthly: float = Field(0.0, ge=0, allow_inf_nan=False,
                                description="$ per month the alignment work costs")
    cost_once: float = Field(0.0, ge=0, allow_inf_nan=False,
                             description="$ one-off, charged in month 1 (or in the month a "
                                         "timeline entry sets it)")

    def levers(self) -> Levers:
        return resolve(self.preset, {k: getattr(self, k) for k in LEVER_NAMES})


class Change(_Strict):
    """One timeline entry: at the start of `month`, set these dotted keys."""

    month: int = Field(ge=1)
    set: dict[str, Any]
    note: str = ""


class Scenario(_Strict):
    """A validated, frozen scenario."""

    name: str = ""
    question: str = ""
    months: int = Field(24, ge=1, le=600)
    seed: int = Field(0, ge=0)
    market: Market
    marketing: Marketing = Marketing()
    sales: Sales = Sales()
    alignment: Alignment = Alignment()
    timeline: list[Change] = Field(default_factory=list)

    @property
    def levers(self) -> Levers:
        return self.alignment.levers()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# Keys a timeline may change during a run: the team and the setup, not the market.
TIMELINE_SECTIONS = ("marketing", "sales", "alignment")


# --------------------------------------------------------------------------- errors


class ScenarioError(Exception):
    """Bad scenario input. `problems` holds one message per mistake."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (dict, list)):
        text = repr(value)
        return text if len(text) < 60 else text[:57] + "..."
    return str(value)


def _describe(err: Mapping[str, Any], allowed: list[str]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = _fmt_value(err.get("input"))
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{near[0]}'?" if near else f"; expected one of {', '.join(allowed)}"
        return "unknown key" + hint
    if kind == "missing":
        return "required key is missing"
    bounds = {
        "greater_than_equal": ("≥", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("≤", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, name = bounds[kind]
        return f"must be {sign} {ctx.get(name)}, got {got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {got}"
    typed = {
        "int_parsing": "a whole number",
        "int_from_float": "a whole number",
        "int_type": "a whole number",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "a string",
        "dict_type": "a table",
        "model_type": "a table",
        "model_attributes_type": "a table",
        "list_type": "a list",
    }
    if kind in typed:
        return f"expected {typed[kind]}, got {got}"
    msg = str(err.get("msg", kind))
    return msg.removeprefix("Value error, ")


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema class that owns the last key of `loc` (for did-you-mean hints)."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return None
            model = field.annotation
            continue
        args = getattr(model, "__args__", ())
        model = args[-1] if args else None  # dict[str, X] or list[X]: step into X
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    args = getattr(model, "__args__", ())
    inner = args[-1] if args else None
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _dotted(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


# --------------------------------------------------------------------------- loading


def schema_keys(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every dotted key a scenario file can set (NAME stands for a segment or program name)."""
    model = model or Scenario
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        inner = getattr(ann, "__args__", ())
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += schema_keys(ann, key + ".")
        elif inner and isinstance(inner[-1], type) and issubclass(inner[-1], BaseModel):
            sub = "[]." if getattr(ann, "__origin__", None) is list else ".NAME."
            keys += schema_keys(inner[-1], key + sub)
        else:
            keys.append(key)
    return keys


def shipped_dir() -> Path:
    """The folder of scenarios shipped inside the package."""
    return Path(str(resources.files("gtmsim") / "scenarios"))


def shipped_scenarios() -> dict[str, Path]:
    return {p.stem: p for p in sorted(shipped_dir().glob("*.toml"))}


def question_of(path: Path) -> str:
    """The question a scenario file asks: its `question` key, else its opening comment."""
    text = path.read_text(encoding="utf-8")
    try:
        question = tomllib.loads(text).get("question")
    except tomllib.TOMLDecodeError:
        question = None
    if isinstance(question, str) and question:
        return question
    lines = [ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")]
    return " ".join(lines[:2])


def find_scenario(name_or_path: str | Path) -> Path:
    """A scenario file path, or the shipped scenario of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_scenarios()
    stem = path.name.removesuffix(".toml")
    if str(name_or_path) == stem and stem in shipped:
        return shipped[stem]
    near = difflib.get_close_matches(stem, list(shipped), n=1)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    raise ScenarioError(
        [f"{name_or_path}: no such scenario file or shipped scenario{hint} "
         f"(shipped: {', '.join(shipped)})"]
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read file: {exc.strerror or exc}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{path}: not valid TOML: {exc}"]) from None


def _merge(base: dict, child: dict, origins: dict[str, str], source: str, prefix: str = "") -> dict:
    """Deep-merge `child` into a copy of `base`, recording which file set each key."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, origins, source, dotted + ".")
        else:
            out[key] = copy.deepcopy(value)
            _mark(origins, dotted, value, source)
    return out


def _mark(origins: dict[str, str], dotted: str, value: Any, source: str) -> None:
    origins.pop(dotted, None)  # re-insert, so that later sources come last
    origins[dotted] = source
    if isinstance(value, dict):
        for k, v in value.items():
            _mark(origins, f"{dotted}.{k}", v, source)


def _resolve_extends(path: Path, origins: dict[str, str], chain: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ScenarioError([f"{chain[-1]}: extends: cycle {cycle}"])
    data = _read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return _merge({}, data, origins, str(path))
    if not isinstance(parent, str):
        raise ScenarioError([f"{path}: extends: expected a file name, got {_fmt_value(parent)}"])
    candidate = path.parent / parent
    try:
        parent_path = candidate if candidate.is_file() else find_scenario(parent)
    except ScenarioError:
        raise ScenarioError([f"{path}: extends: no such file '{parent}' next to it"]) from None
    base = _resolve_extends(parent_path, origins, (*chain, path))
    return _merge(base, data, origins, str(path))


def parse_override(text: str) -> tuple[str, Any]:
    """Parse `KEY=VALUE`; the value is read as a TOML value, else kept as a string."""
    if "=" not in text:
        raise ScenarioError([f"--set {text}: expected KEY=VALUE, e.g. sales.reps=6"])
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key:
        raise ScenarioError([f"--set {text}: the key is empty"])
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def set_dotted(data: dict, key: str, value: Any) -> dict:
    """A copy of `data` with the dotted `key` set to `value`."""
    out = copy.deepcopy(data)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
    return out


def _validate(data: dict, origins: dict[str, str], default_source: str) -> Scenario:
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_problems(exc, origins, default_source)) from None
    problems = _semantic_problems(scenario, origins, default_source)
    if problems:
        raise ScenarioError(problems)
    return scenario


def _source_of(dotted: str, origins: dict[str, str], default: str) -> str:
    """The file (or --set) that last set `dotted` or anything inside it."""
    inside = [src for k, src in origins.items() if k == dotted or k.startswith(dotted + ".")]
    if inside:
        return inside[-1]
    key = dotted
    while key:
        if key in origins:
            return origins[key]
        key = key.rpartition(".")[0]
    return default


def _problems(exc: ValidationError, origins: dict[str, str], default_source: str) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "value_error" and str(err.get("msg", "")).startswith("Value error, segments:"):
            loc = (*loc, "segments")
            err = {**err, "msg": str(err["msg"]).removeprefix("Value error, segments: ")}
        model = _model_at(loc)
        allowed = list(model.model_fields) if model else []
        dotted = _dotted(loc) or "(top level)"
        source = _source_of(dotted, origins, default_source)
        out.append(f"{source}: {dotted}: {_describe(err, allowed)}")
    return out


def _semantic_problems(s: Scenario, origins: dict[str, str], default_source: str) -> list[str]:
    """Cross-key rules pydantic cannot see field by field."""
    found: list[tuple[str, str]] = []
    names = list(s.market.segments)
    for pname, prog in s.marketing.programs.items():
        for seg in prog.segments:
            if seg not in s.market.segments:
                found.append((f"marketing.programs.{pname}.segments", f"unknown segment '{seg}'; "
                              f"expected one of {', '.join(names)}"))
    for seg in s.sales.segments:
        if seg not in s.market.segments:
            found.append(("sales.segments", f"unknown segment '{seg}'; expected one of {', '.join(names)}"))
    base = s.to_dict()
    for i, change in enumerate(s.timeline):
        for key, value in change.set.items():
            where = f"timeline[{i}].set.{key}"
            section = key.split(".", 1)[0]
            if section not in TIMELINE_SECTIONS:
                found.append((where, "only marketing.*, sales.* and alignment.* keys can change "
                              "during a run"))
                continue
            try:
                Scenario.model_validate(set_dotted(base, key, value))
            except ValidationError as exc:
                for err in exc.errors():
                    model = _model_at(tuple(err["loc"]))
                    allowed = list(model.model_fields) if model else []
                    found.append((where, _describe(err, allowed)))
    return [f"{_source_of(k.split('[')[0], origins, default_source)}: {k}: {m}" for k, m in found]


def load_scenario(
    path_or_name: str | Path,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> Scenario:
    """Load, merge and validate a scenario.

    Args:
        path_or_name: a TOML file, or the name of a shipped scenario (e.g. "aligned").
        overrides: dotted keys to set after loading, as a mapping
            (`{"sales.reps": 6}`) or as `KEY=VALUE` strings (`["sales.reps=6"]`).

    Raises:
        ScenarioError: listing every problem found, each naming file and key.
    """
    path = find_scenario(path_or_name)
    origins: dict[str, str] = {}
    data = _resolve_extends(path, origins)
    data.setdefault("name", path.stem)
    pairs = _override_pairs(overrides)
    for key, value in pairs:
        data = set_dotted(data, key, value)
        _mark(origins, key, value, f"--set {key}")
    return _validate(data, origins, str(path.resolve()))


def _override_pairs(overrides: Mapping[str, Any] | Iterable[str] | None) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    return [parse_override(item) for item in overrides]


def scenario_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Scenario:
    """Validate a scenario given as a plain dict (notebooks, validation checks)."""
    return _validate(copy.deepcopy(dict(data)), {}, source)


def with_changes(scenario: Scenario, changes: Mapping[str, Any], source: str = "timeline") -> Scenario:
    """A copy of `scenario` with dotted keys set and validated again."""
    data = scenario.to_dict()
    for key, value in changes.items():
        data = set_dotted(data, key, value)
    return _validate(data, {}, source)


def check_files(paths: Iterable[str | Path]) -> dict[str, list[str]]:
    """Validate several files; map each to its problems (empty when valid)."""
    report: dict[str, list[str]] = {}
    for p in paths:
        try:
            load_scenario(p)
            report[str(p)] = []
        except ScenarioError as exc:
            report[str(p)] = exc.problems
    return report


__all__ = [
    "Alignment",
    "Change",
    "Levers",
    "Market",
    "Marketing",
    "Network",
    "PRESETS",
    "Program",
    "Sales",
    "Scenario",
    "ScenarioError",
    "Segment",
    "check_files",
    "find_scenario",
    "load_scenario",
    "parse_override",
    "question_of",
    "scenario_from_dict",
    "shipped_scenarios",
    "with_changes",
]
