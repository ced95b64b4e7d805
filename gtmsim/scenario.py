"""Scenario files: schema, loading, `extends`, overrides and error reporting.

A scenario is a TOML file validated into a frozen `Scenario`. Loading resolves
`extends` (deep merge, the child wins), applies `--set` style overrides typed by the
schema, and reports every mistake at once, each naming the file that set the key,
the dotted key and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gtmsim.alignment import LEVER_NAMES, PRESETS, Levers, Routing, resolve

Prob = float  # documented alias; ranges are set per field with Field(ge=0, le=1)

# Every number has a finite range (docs/scenarios.md lists them). Upper bounds keep values
# meaningful and the work bounded: $ amounts ≤ 1e10, durations in days ≤ 3650 (ten years).
MAX_MONEY = 1e10
MAX_DAYS = 3650
# The first-contact law's defaults, fitted to the published speed-to-lead ratios
# (docs/model.md, "Speed to lead"; gtmsim/validation/contact.py checks them through the model).
HOT_MINUTES = 2.0
LASTING = 0.025
DECAY_HOURS = 48.0
DECAY_POWER = 2.8
MAX_EXTENDS_DEPTH = 32
MAX_NAME_LENGTH = 100
MAX_LABEL_LENGTH = 120
SEED_LIMIT = 2**63  # seeds are stored as int64 in results tables
# A name becomes a results folder: letters, digits, spaces and _ - . + , = & ( ), starting
# with a letter, digit, '_', '+' or '(' and not ending in a space or '.' (no hidden folders,
# no option-like '-x', no '..', no path separators or control characters).
_NAME_RE = re.compile(r"[\w+(](?:[\w .,+=&()-]*[\w+)-])?")
NAME_RULE = ("may hold only letters, digits, spaces and _ - . + , = & ( ) (it names the results "
             "folder), start with a letter, digit, '_', '+' or '(', not end in a space or '.', "
             "and not contain '..'")


class _Strict(BaseModel):
    # strict: a boolean or a string is not a number (an int is still accepted for a float);
    # allow_inf_nan=False: TOML's inf and nan are refused everywhere.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Segment(_Strict):
    """One market segment (e.g. SMB, mid-market, enterprise)."""

    share: float = Field(ge=0, le=1, description="share of prospects in this segment")
    fit_mean: float = Field(0.5, gt=0, lt=1, description="mean fit to the ideal customer profile")
    fit_concentration: float = Field(6.0, gt=0, le=1000,
                                     description="Beta concentration of fit (a + b)")
    deal_value: float = Field(gt=0, le=MAX_MONEY, description="mean first-year contract value, $")
    deal_value_spread: float = Field(0.5, ge=0, le=3, description="log-normal sigma of deal value")
    cycle_days: float = Field(ge=1, le=MAX_DAYS, description="mean sales-cycle length, days")
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
    buying_window_days: float = Field(90, ge=1, le=MAX_DAYS)
    inbound_propensity: float = Field(0.5, ge=0, le=1)
    trust_half_life_days: float = Field(120, ge=1, le=100 * MAX_DAYS)
    word_of_mouth: float = Field(0.08, ge=0, le=30, description="talks per spreader per month")
    referral_weight: float = Field(3.0, ge=0, le=1000, description="customers talk this many times more")
    referral_trust: float = Field(0.15, ge=0, le=1, description="trust gain from a customer's talk")
    network: Network = Network()
    churn_monthly: float = Field(0.01, ge=0, le=1)
    dormant_days: float = Field(180, ge=0, le=MAX_DAYS)
    lead_patience_days: float = Field(30, gt=0, le=MAX_DAYS, description="days a lead waits before going cold")
    qualify_rate: float = Field(0.8, ge=0, le=1, description="qualification chance, ideal fresh lead")
    unready_qualify: float = Field(0.06, ge=0, le=1, description="same, for a lead not in market")
    # First contact (docs/model.md, "Speed to lead"): a hand-raiser's first response reaches
    # a decision maker with chance contact_rate × D(hours waited), D = (1 − lasting) ×
    # exp(−minutes / response_hot_minutes) + lasting × (1 + hours / response_decay_hours)
    # ^ −response_decay_power.
    contact_rate: float = Field(0.9, ge=0, le=1, description="chance an instant first response reaches a decision maker")
    response_hot_minutes: float = Field(HOT_MINUTES, gt=0, le=MAX_DAYS * 1440, description="time constant of a hand-raiser's hot interest, minutes")
    response_lasting: float = Field(LASTING, ge=0, le=1, description="share of first-contact chance that outlasts the hot interest")
    response_decay_hours: float = Field(DECAY_HOURS, gt=0, le=MAX_DAYS * 24, description="scale of the lasting interest's decay, hours")
    response_decay_power: float = Field(DECAY_POWER, ge=0, le=5, description="power of the lasting interest's decay")

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
    monthly_budget: float = Field(ge=0, le=MAX_MONEY, description="$ per month")
    cost_per_reach: float = Field(ge=0.0001, le=1e6, description="$ per prospect touch bought")
    carryover: float = Field(0.5, ge=0, lt=1, description="geometric adstock per month")
    saturation: float = Field(1.0, gt=0, le=1000, description="touches per targeted prospect at half reach")
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
    deal_capacity: int = Field(12, ge=1, le=100_000, description="open opportunities per rep")
    touches_per_day: float = Field(8.0, gt=0, le=1000)
    touches_per_lead: float = Field(4.0, ge=0.01, le=1000, description="touches a first response and qualification take")
    deal_touches_per_day: float = Field(0.25, ge=0, le=1000, description="rep time one open deal takes")
    outbound_share: float = Field(0.2, ge=0, le=1)
    outbound_success: float = Field(0.15, ge=0, le=1)
    skill_spread: float = Field(0.2, ge=0, le=2)
    ramp_months: float = Field(5.0, ge=0, le=120)
    cost_per_rep_month: float = Field(15_000, ge=0, le=MAX_MONEY)
    day_start_hour: float = Field(9.0, ge=0, lt=24, description="hour the working day starts")
    day_hours: float = Field(8.0, gt=0, le=24, description="working hours a day")
    pickup_minutes: float = Field(10.0, ge=0, le=1440, description="median minutes from an alert to a free rep's call")
    follow_up_reach: float = Field(0.5, ge=0, le=1, description="share of leads missed at first contact that follow-ups reach, at once")
    follow_up_half_life_days: float = Field(7.0, gt=0, le=MAX_DAYS, description="days of waiting that halve what follow-ups reach")
    segments: list[str] = Field(default_factory=list, description="outbound focus; empty = all")

    @model_validator(mode="after")
    def _day_fits(self) -> Sales:
        if self.day_start_hour + self.day_hours > 24:
            raise ValueError(f"day_start_hour + day_hours: the working day must end by "
                             f"midnight, got {self.day_start_hour:g} + {self.day_hours:g}")
        return self


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
    cost_monthly: float = Field(0.0, ge=0, le=MAX_MONEY, allow_inf_nan=False,
                                description="$ per month the alignment work costs")
    cost_once: float = Field(0.0, ge=0, le=MAX_MONEY, allow_inf_nan=False,
                             description="$ one-off, charged in month 1 (or in the month a "
                                         "timeline entry sets it)")

    def levers(self) -> Levers:
        return resolve(self.preset, {k: getattr(self, k) for k in LEVER_NAMES})


class Change(_Strict):
    """One timeline entry: at the start of `month`, set these dotted keys."""

    month: int = Field(ge=1, le=600)
    set: dict[str, Any]
    note: str = ""


# --------------------------------------------------------------------------- the founder

# Channels a founder makes by hand (writing, posting, the newsletter, speaking, press);
# paid ads and "other" are bought with money and do not depend on the founder's hours.
FOUNDER_CHANNELS = ("content", "social", "email", "events", "pr")


class Founder(_Strict):
    """One person who both markets and sells and splits the week between the two.

    With this section the sales team is the founder alone: `[sales]` describes a full-time
    seller (touches a day, deal slots) and the founder sells `selling_share` of
    `weekly_hours`; each founder-made program as written is what a full-time week of that
    work reaches, and the founder's marketing hours scale its touches (gtmsim/founder.py).
    """

    weekly_hours: float = Field(gt=0, le=168, description="hours the founder works a week, h/week")
    selling_share: float = Field(ge=0, le=1, description="share of the week spent selling; the "
                                 "rest goes to the founder's marketing programs (a fraction)")
    full_time_hours: float = Field(40.0, gt=0, le=168,
                                   description="the full-time week, h/week, that [sales] and "
                                               "each founder-made program as written describe")
    programs: list[str] | None = Field(None, description="marketing programs the founder makes "
                                       "by hand; default: every content, social, email, events "
                                       "and pr program")


def _founder_defaults(data: Any) -> Any:
    """With a [founder] section and no sales.reps, the sales team is one person."""
    if isinstance(data, Mapping) and isinstance(data.get("founder"), Mapping):
        sales = data.get("sales", {})
        if isinstance(sales, Mapping) and "reps" not in sales:
            data = {**data, "sales": {**sales, "reps": 1}}
    return data


def _founder_errors(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A [founder] section contradicted by the rest of the scenario."""
    founder = data.get("founder")
    if not isinstance(founder, Mapping):
        return []
    found: list[tuple[str, str]] = []
    sales = data.get("sales")
    reps = sales.get("reps") if isinstance(sales, Mapping) else None
    if isinstance(reps, int) and not isinstance(reps, bool) and reps != 1:  # else: a type error
        found.append(("sales.reps", "the [founder] section makes the founder the whole sales "
                      f"team (one person); leave sales.reps out or set it to 1, got {_fmt_value(reps)}"))
    marketing = data.get("marketing")
    programs = marketing.get("programs") if isinstance(marketing, Mapping) else None
    names = [str(n) for n in programs] if isinstance(programs, Mapping) else []
    made = founder.get("programs")
    if isinstance(made, list):
        for name in made:
            if isinstance(name, str) and name not in names:
                expected = f"expected one of {', '.join(names)}" if names else \
                    "marketing.programs has none"
                found.append(("founder.programs", f"unknown program '{name}'; {expected}"))
    return found


class Scenario(_Strict):
    """A validated, frozen scenario."""

    name: str = Field("", max_length=MAX_NAME_LENGTH)
    # What reports, decks and workbooks call the scenario ("Fix the hand-off"); the name
    # stays the id in results tables and folders. Empty: a readable form of the name.
    label: str = Field("", max_length=MAX_LABEL_LENGTH)
    question: str = ""
    months: int = Field(24, ge=1, le=600)
    seed: int = Field(0, ge=0, lt=SEED_LIMIT)
    market: Market
    marketing: Marketing = Marketing()
    sales: Sales = Sales()
    alignment: Alignment = Alignment()
    founder: Founder | None = None
    timeline: list[Change] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _founder_team(cls, data: Any) -> Any:
        return _founder_defaults(data)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if name and (not _NAME_RE.fullmatch(name) or ".." in name):
            raise ValueError(f"{NAME_RULE}; got {_fmt_value(name)}")
        return name

    @field_validator("label")
    @classmethod
    def _one_line_label(cls, label: str) -> str:
        if any(not ch.isprintable() for ch in label):
            raise ValueError(f"must be one line of printable text, got {_fmt_value(label)}")
        if label and not label.strip():
            raise ValueError("must not be only spaces; leave it out to use the name")
        return label

    @property
    def display_label(self) -> str:
        """The label shown to people: `label`, else a readable form of the name."""
        return self.label or readable_name(self.name)

    @property
    def levers(self) -> Levers:
        return self.alignment.levers()

    def horizon_warnings(self, months: int | None = None) -> list[str]:
        """Timeline entries that a run of `months` (default: the scenario's) never reaches."""
        last = self.months if months is None else months
        return [f"timeline[{i}].month: {c.month} is after the last month ({last}); "
                "it will not apply" for i, c in enumerate(self.timeline) if c.month > last]

    def to_dict(self) -> dict[str, Any]:
        # No label (or founder), no key: results folders written before they existed keep
        # their identity.
        unset = {k for k in ("label", "founder") if not getattr(self, k)}
        return self.model_dump(mode="json", exclude=unset)


# Keys a timeline may change during a run: the team and the setup, not the market.
TIMELINE_SECTIONS = ("marketing", "sales", "alignment", "founder")


# --------------------------------------------------------------------------- errors


class ScenarioError(Exception):
    """Bad scenario input. `problems` holds one message per mistake."""

    def __init__(self, problems: list[str]):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[type, tuple[list[str]]]:
        # Errors cross process boundaries (Dask, multiprocessing) with their problem list.
        return (type(self), (self.problems,))


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) < 60 else text[:56] + "...'"
    if isinstance(value, (dict, list)):
        text = repr(value)
        return text if len(text) < 60 else text[:57] + "..."
    return str(value)


def _kind(value: Any) -> str:
    """What a value is, in the words of a TOML file."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return "a " + type(value).__name__


def _describe(err: Mapping[str, Any], allowed: list[str]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    raw = err.get("input")
    got = _fmt_value(raw)
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{near[0]}'?" if near else f"; expected one of {', '.join(allowed)}"
        return "unknown key" + hint
    if kind == "missing":
        return "required key is missing"
    if kind == "finite_number":
        return f"must be a finite number, got {got}"
    bounds = {
        "greater_than_equal": ("≥", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("≤", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, name = bounds[kind]
        return f"must be {sign} {ctx.get(name)}, got {got}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters, got {len(str(raw))}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {got} ({_kind(raw)})"
    typed = {
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "int_type": "an integer",
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
        return f"must be {typed[kind]}, got {got} ({_kind(raw)})"
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
    args = getattr(model, "__args__", ())  # dict[str, X], list[X] or X | None: the model X
    return next((a for a in reversed(args) if isinstance(a, type) and issubclass(a, BaseModel)),
                None)


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
        optional = [a for a in inner if a is not type(None)] if type(None) in inner else []
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += schema_keys(ann, key + ".")
        elif len(optional) == 1 and isinstance(optional[0], type) and issubclass(
                optional[0], BaseModel):  # an optional section such as [founder]
            keys += schema_keys(optional[0], key + ".")
        elif inner and isinstance(inner[-1], type) and issubclass(inner[-1], BaseModel):
            sub = "[]." if getattr(ann, "__origin__", None) is list else ".NAME."
            keys += schema_keys(inner[-1], key + sub)
        else:
            keys.append(key)
    return keys


def readable_name(name: str) -> str:
    """A scenario name as people read it: "hire_and_cut" -> "Hire and cut"."""
    text = re.sub(r"\s+", " ", str(name).replace("_", " ")).strip()
    return text[:1].upper() + text[1:] if text else "Scenario"


def label_of(data: Mapping[str, Any]) -> str:
    """The display label of a scenario recorded as a dict (a manifest entry)."""
    label = data.get("label") if isinstance(data, Mapping) else None
    if isinstance(label, str) and label.strip():
        return label
    return readable_name(data.get("name", "") if isinstance(data, Mapping) else "")


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
    if path.exists():  # a folder, a FIFO, a device: not something to read a scenario from
        what = "a folder" if path.is_dir() else "not a regular file"
        raise ScenarioError([f"{name_or_path}: is {what}; give a scenario file (.toml) "
                             "or a shipped scenario's name"])
    near = difflib.get_close_matches(stem, list(shipped), n=1)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    raise ScenarioError(
        [f"{name_or_path}: no such scenario file or shipped scenario{hint} "
         f"(shipped: {', '.join(shipped)})"]
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read file: {exc.strerror or exc}"]) from None
    # A UTF-8 byte-order mark (as some Windows editors write) is accepted and dropped.
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([f"{path}: not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at "
                             f"offset {exc.start}); a scenario is a TOML file saved as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{path}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ScenarioError([f"{path}: not valid TOML: tables or lists nested too deeply"]
                            ) from None


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
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise ScenarioError([f"{chain[0]}: extends: a chain of more than {MAX_EXTENDS_DEPTH} "
                             f"files (stopped at {path})"])
    data = _read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return _merge({}, data, origins, str(path))
    if not isinstance(parent, str) or not parent:
        raise ScenarioError([f"{path}: extends: expected a file name, got {_fmt_value(parent)}"])
    candidate = path.parent / parent
    try:
        parent_path = candidate if candidate.is_file() else find_scenario(parent)
    except (ScenarioError, OSError, ValueError):
        raise ScenarioError([f"{path}: extends: no such file '{parent}' next to it"]) from None
    base = _resolve_extends(parent_path, origins, (*chain, path))
    return _merge(base, data, origins, str(path))


# A bare word (`aligned`, `cherry_pick`) is taken as a string; anything else must be TOML.
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse `KEY=VALUE`; the value is a TOML value, or a bare word taken as a string."""
    if not isinstance(text, str):
        raise ScenarioError([f"--set {text!r}: expected a KEY=VALUE string, e.g. sales.reps=6"])
    if "=" not in text:
        raise ScenarioError([f"--set {text}: expected KEY=VALUE, e.g. sales.reps=6"])
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key:
        raise ScenarioError([f"--set {text}: the key is empty"])
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if not _BARE_WORD.fullmatch(raw):
            reason = str(exc).split(" (at ")[0]
            raise ScenarioError([f"--set {key}: {raw!r} is not a valid TOML value ({reason}); "
                                 "write numbers as 6 or 0.5, true/false, strings as \"text\", "
                                 "lists as [\"a\", \"b\"]"]) from None
        value = raw
    except RecursionError:
        raise ScenarioError([f"--set {key}: value nested too deeply"]) from None
    return key, value


def flatten_changes(
    changes: Mapping[str, Any], prefix: str = "",
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Dotted leaf keys of `changes`, so that `{sales = {reps = 8}}` means `{"sales.reps" = 8}`.

    A change sets exactly the leaves it names, merged into what is in force; it never
    replaces a whole table. Returns the leaves and (key, problem) pairs for keys set twice
    and for empty tables, which would set nothing.
    """
    leaves: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []

    def walk(node: Mapping[str, Any], pre: str, depth: int) -> None:
        for k, v in node.items():
            key = f"{pre}{k}"
            if any(not part for part in str(k).split(".")):
                problems.append((key, "empty key part; expected a dotted key like sales.reps"))
            elif isinstance(v, Mapping):
                if not v:
                    problems.append((key, "an empty table sets nothing; name the keys to set, "
                                     "e.g. sales.reps"))
                elif depth > 16:
                    problems.append((key, "tables nested too deeply"))
                else:
                    walk(v, key + ".", depth + 1)
            elif key in leaves:
                problems.append((key, "set twice in one change"))
            else:
                leaves[key] = v

    walk(changes, prefix, 0)
    return leaves, problems


def set_dotted(data: dict, key: str, value: Any) -> dict:
    """A copy of `data` with the dotted `key` set to `value`."""
    return _set_leaves(data, {key: value})


def _set_leaves(data: dict, leaves: Mapping[str, Any]) -> dict:
    """A copy of `data` with the dotted `leaves` set. Only the tables on the way to a leaf
    are copied (the rest is shared with `data`, which stays as it was), so setting a key
    costs the same however long the scenario's timeline is."""
    out = dict(data)
    for key, value in leaves.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def _validate(data: dict, origins: dict[str, str], default_source: str, *,
              horizon: Literal["error", "warn"] = "error", timeline: bool = True) -> Scenario:
    """Validate `data` in one pass: field errors, cross-key rules and every timeline state.

    Args:
        horizon: "error" refuses timeline entries after the last month; "warn" leaves them
            to `Scenario.horizon_warnings` (the horizon was shortened by an override).
        timeline: also check the scenario in force after each timeline change.
    """
    scenario, found = _schema(data)
    found += _semantic_errors(data)
    if timeline:
        found += _timeline_errors(data, horizon)
    problems = list(dict.fromkeys(
        f"{_source_of(_origin_key(key), origins, default_source)}: {key}: {msg}"
        for key, msg in found
    ))
    if problems or scenario is None:
        raise ScenarioError(problems)
    return scenario


def _origin_key(dotted: str) -> str:
    return "timeline" if dotted.startswith("timeline[") else dotted


def _field_errors(data: dict) -> list[tuple[str, str]]:
    """(dotted key, message) for each schema error in `data`."""
    return _schema(data)[1]


def _schema(data: dict) -> tuple[Scenario | None, list[tuple[str, str]]]:
    """`data` validated by the schema, or None and (dotted key, message) for each error."""
    try:
        return Scenario.model_validate(data), []
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] == "value_error" and str(err.get("msg", "")).startswith(
                    "Value error, segments:"):
                loc = (*loc, "segments")
                err = {**err, "msg": str(err["msg"]).removeprefix("Value error, segments: ")}
            model = _model_at(loc)
            allowed = list(model.model_fields) if model else []
            out.append((_dotted(loc) or "(top level)", _describe(err, allowed)))
        return None, out


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _semantic_errors(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Cross-key rules pydantic cannot see field by field, read from the raw data so they are
    reported together with the field errors (values of the wrong type are skipped here)."""
    found: list[tuple[str, str]] = _founder_errors(data)
    market = data.get("market")
    segments = market.get("segments") if isinstance(market, Mapping) else None
    if not isinstance(segments, Mapping):
        return found
    if not segments:
        found.append(("market.segments", "at least one segment is required"))
    shares = [seg.get("share") for seg in segments.values() if isinstance(seg, Mapping)]
    if segments and len(shares) == len(segments) and all(_is_number(x) for x in shares):
        total = sum(shares)
        if abs(total - 1.0) > 1e-6:
            found.append(("market.segments", f"shares must sum to 1, got {total:g}"))
    names = [str(n) for n in segments]

    def unknown(where: str, listed: Any) -> None:
        if isinstance(listed, list):
            for seg in listed:
                if isinstance(seg, str) and seg not in segments:
                    found.append((where, f"unknown segment '{seg}'; expected one of "
                                         f"{', '.join(names)}"))

    marketing = data.get("marketing")
    programs = marketing.get("programs") if isinstance(marketing, Mapping) else None
    if isinstance(programs, Mapping):
        for pname, prog in programs.items():
            if isinstance(prog, Mapping):
                unknown(f"marketing.programs.{pname}.segments", prog.get("segments"))
    sales = data.get("sales")
    if isinstance(sales, Mapping):
        unknown("sales.segments", sales.get("segments"))
    return found


def _timeline_errors(data: Mapping[str, Any], horizon: str) -> list[tuple[str, str]]:
    """Check every timeline change and the scenario in force after each one.

    Changes apply in month order (in file order within a month), as in a run. Each state
    gets the same field and cross-key checks as the base scenario; a problem is reported
    once, against the change that brought it in.
    """
    timeline = data.get("timeline")
    if not isinstance(timeline, list):
        return []
    months = data.get("months", Scenario.model_fields["months"].default)
    valid_months = isinstance(months, int) and not isinstance(months, bool) and 1 <= months <= 600
    months = months if valid_months else None

    def month_of(entry: Mapping[str, Any]) -> int | None:
        m = entry.get("month")
        return m if isinstance(m, int) and not isinstance(m, bool) and m >= 1 else None

    # Entries with a bad month (reported by the schema) still get their keys checked, last.
    entries = [(i, e) for i, e in enumerate(timeline)
               if isinstance(e, Mapping) and isinstance(e.get("set"), Mapping)]
    entries.sort(key=lambda ie: month_of(ie[1]) or 10**9)
    found: list[tuple[str, str]] = []
    state = {k: v for k, v in data.items() if k != "timeline"}
    before = set(_field_errors(state) + _semantic_errors(state))
    for i, entry in entries:
        where = f"timeline[{i}]"
        month = month_of(entry)
        if months is not None and month is not None and month > months and horizon == "error":
            found.append((f"{where}.month", f"{entry['month']} is after the last month "
                          f"({months}); it would never apply"))
        leaves, problems = flatten_changes(entry["set"])
        found += [(f"{where}.set.{k}", m) for k, m in problems]
        allowed = {}
        for key, value in leaves.items():
            if key.split(".", 1)[0] not in TIMELINE_SECTIONS:
                found.append((f"{where}.set.{key}", "only marketing.*, sales.*, alignment.* and "
                              "founder.* keys can change during a run"))
            else:
                allowed[key] = value
        if not allowed:
            continue
        state = _set_leaves(state, allowed)
        after = _field_errors(state) + _semantic_errors(state)
        found += [(f"{where}.set.{k}", m) for k, m in after if (k, m) not in before]
        before = set(after)
    return found


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


def load_scenario(
    path_or_name: str | Path,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> Scenario:
    """Load, merge and validate a scenario.

    Args:
        path_or_name: a TOML file, or the name of a shipped scenario (e.g. "aligned").
        overrides: dotted keys to set after loading, as a mapping
            (`{"sales.reps": 6}`) or as `KEY=VALUE` strings (`["sales.reps=6"]`). A table
            value sets the keys inside it (`{"sales": {"reps": 6}}` = `{"sales.reps": 6}`).

    Raises:
        ScenarioError: listing every problem found, each naming file and key.
    """
    if not isinstance(path_or_name, (str, Path)) or not str(path_or_name).strip():
        raise ScenarioError([f"load_scenario: expected a scenario file path or the name of a "
                             f"shipped scenario, got {path_or_name!r}"])
    path = find_scenario(path_or_name)
    origins: dict[str, str] = {}
    data = _resolve_extends(path, origins)
    pairs, problems = _override_pairs(overrides)
    if problems:
        raise ScenarioError(problems)
    for key, value in pairs:
        data = set_dotted(data, key, value)
        _mark(origins, key, value, f"--set {key}")
    if "name" not in data or (isinstance(data["name"], str) and not data["name"].strip()):
        data["name"] = _name_from_stem(path.stem)  # no name, or a blank one: the file's
    overridden = any(k == "months" for k, _ in pairs)
    return _validate(data, origins, str(path.resolve()), horizon="warn" if overridden else "error")


def _name_from_stem(stem: str) -> str:
    """A file stem made into a valid `name` (the stem of `my plan!.toml` is `my plan_`)."""
    name = re.sub(r"[^\w .,+=&()-]", "_", stem).replace("..", "_")[:MAX_NAME_LENGTH]
    name = name.rstrip(" .")
    if name and not re.match(r"[\w+(]", name):
        name = "_" + name[: MAX_NAME_LENGTH - 1]
    return name if _NAME_RE.fullmatch(name or "-") else "scenario"


def _override_pairs(
    overrides: Mapping[str, Any] | Iterable[str] | None,
) -> tuple[list[tuple[str, Any]], list[str]]:
    """Overrides as dotted leaf keys (tables flattened), and any problems with them."""
    if overrides is None:
        return [], []
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (Mapping, Iterable)):
        return [], [f"overrides: expected a mapping of dotted keys or a list of KEY=VALUE "
                    f"strings, got {overrides!r}"]
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items, problems = [], []
        for item in overrides:
            try:
                items.append(parse_override(item))
            except ScenarioError as exc:
                problems += exc.problems
        if problems:
            return [], problems
    pairs: list[tuple[str, Any]] = []
    problems = []
    for key, value in items:
        if not isinstance(key, str) or not key:
            problems.append(f"overrides: keys must be dotted key strings, got {key!r}")
            continue
        if isinstance(value, Mapping):
            leaves, bad = flatten_changes({key: value})
            problems += [f"--set {k}: {k}: {m}" for k, m in bad]
            pairs += list(leaves.items())
        else:
            pairs.append((key, value))
    return pairs, problems


def scenario_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Scenario:
    """Validate a scenario given as a plain dict (notebooks, validation checks)."""
    if not isinstance(data, Mapping):
        raise ScenarioError([f"{source}: expected a table (dict) of scenario keys, got "
                             f"{type(data).__name__}"])
    return _validate(copy.deepcopy(dict(data)), {}, source)


def with_changes(scenario: Scenario, changes: Mapping[str, Any], source: str = "timeline") -> Scenario:
    """A copy of `scenario` with dotted keys set and validated again.

    Tables are flattened to their leaves first, so a change sets exactly the keys it names
    and keeps everything else in force (see `flatten_changes`).
    """
    if not isinstance(changes, Mapping):
        raise ScenarioError([f"{source}: expected a mapping of dotted keys, got {changes!r}"])
    leaves, problems = flatten_changes(changes)
    if problems:
        raise ScenarioError([f"{source}: {k}: {m}" for k, m in problems])
    data = _set_leaves(scenario.to_dict(), leaves)
    # The timeline itself was checked when the scenario was loaded.
    return _validate(data, {}, source, horizon="warn", timeline="timeline" in leaves)


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
    "Founder",
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
    "label_of",
    "load_scenario",
    "parse_override",
    "question_of",
    "readable_name",
    "scenario_from_dict",
    "shipped_scenarios",
    "with_changes",
]
