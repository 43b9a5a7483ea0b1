"""The catalogue's YAML schema (docs/catalogue.md) as pydantic models, and their conversion to the records.

One declarative description of every key replaces the hand-written checks; the cross-field rules pydantic cannot
state (a sparse peak is twice the dense one; a CPU's peaks are cores x clock x FLOP per cycle, in exact decimal)
are the models' validators. Problems come back as one CatalogError line naming the file, the entry and the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo, model_validator

from ..errors import CatalogError
from ..schemas import Problem, dotted, first_problem, refuse, validated
from ..units import LARGEST_NUMBER, PRECISIONS, SMALLEST_FIGURE
from .names import normalize_name
from .records import (
    BYTES_PER_CHANNEL_TRANSFER,
    CPU_CLOCKS,
    DEFAULT_KIND,
    KINDS,
    Accelerator,
    CoreGroup,
    DeviceKind,
    Link,
    exact_decimal,
    plain,
)

CORE_KEYS = ("cores", "clock_ghz", "clock", "flop_per_cycle")
CPU_ONLY_KEYS = (*CORE_KEYS, "core_groups", "memory_channels", "memory_mt_s")
REQUIRED_KEYS = ("id", "name", "vendor", "peak_tflops")
SPARSE_RATIO_TOLERANCE = 0.02  # sparse peaks are about 2x dense; datasheets round


# ---------------------------------------------------------------- the field types


def _number(value: Any) -> float:
    if value is None:
        refuse("{field} is missing a value", "give a number or drop the key")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        refuse(f"{{field}} must be a number, got {value!r}")
    if not math.isfinite(value):
        refuse(f"{{field}} must be finite, got {value!r}")
    if value <= 0:
        refuse(f"{{field}} must be > 0, got {value!r}")
    if not SMALLEST_FIGURE <= value <= LARGEST_NUMBER:
        refuse(
            f"{{field}} must be between {SMALLEST_FIGURE:g} and {LARGEST_NUMBER:g}, got {value!r}",
            "is the unit right? peaks are TFLOPS, memory GiB, bandwidth GB/s",
        )
    return float(value)


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        refuse(f"{{field}} must be a whole number > 0, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
        refuse(f"{{field}} must be a non-empty string, got {value!r}")
    return str(value).strip()


def _texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (str, list)):
        refuse(f"{{field}} must be a list of strings, got {value!r}")
    return tuple(_text(item) for item in ([value] if isinstance(value, str) else value))


def _precision(value: Any) -> str:
    if value not in PRECISIONS:
        refuse(f"unknown precision {value!r} in {{parent}}", f"use: {', '.join(PRECISIONS)}")
    return value


def _kind(value: Any) -> DeviceKind:
    if not isinstance(value, str) or value.strip().lower() not in KINDS:
        refuse(f"kind must be one of {', '.join(KINDS)}, got {value!r}")
    return cast(DeviceKind, value.strip().lower())


def _clock(value: Any) -> str:
    if value not in CPU_CLOCKS:
        refuse(f"{{field}} must be one of {', '.join(CPU_CLOCKS)}, got {value!r}", "say which clock clock_ghz is")
    return value


def _year(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1990 <= value <= 2100):
        refuse(f"year must be a whole year like 2022, got {value!r}")
    return value


def _optional(check: Any) -> Any:
    """`check`, letting an absent (None) or empty value through as None."""
    return lambda value: None if value is None or value == "" else check(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        refuse(f"{{field}} must be true (the datasheet adds both directions) or false (per direction), got {value!r}")
    return value


Number = Annotated[float, BeforeValidator(_number)]
MaybeNumber = Annotated[float | None, BeforeValidator(_optional(_number))]
Whole = Annotated[int, BeforeValidator(_whole)]
MaybeWhole = Annotated[int | None, BeforeValidator(_optional(_whole))]
Text = Annotated[str, BeforeValidator(_text)]
MaybeText = Annotated[str | None, BeforeValidator(_optional(_text))]
Texts = Annotated[tuple[str, ...], BeforeValidator(_texts)]
Precision = Annotated[str, BeforeValidator(_precision)]
Kind = Annotated[DeviceKind, BeforeValidator(_kind)]
Peaks = dict[Precision, Number]


def _mapping(value: Any, message: str) -> Any:
    if not isinstance(value, Mapping):
        refuse(f"{message}, got {value!r}")
    return value


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# ---------------------------------------------------------------- the models


class PerCycle(_Schema):
    """What one core does per cycle at one precision, and how that follows from its vector or matrix units."""

    value: Number
    how: Text

    @model_validator(mode="before")
    @classmethod
    def _value_and_how(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or set(map(str, data)) != {"value", "how"}:
            refuse(
                f"{{field}} must be {{value: N, how: TEXT}}, got {data!r}",
                "how = how N follows from the vector or matrix units",
            )
        return data


class Cores(_Schema):
    """Alike cores of a CPU: on the entry itself, or one item of `core_groups` (hybrid chips)."""

    name: MaybeText = None
    cores: Whole
    clock_ghz: Number
    clock: Annotated[str, BeforeValidator(_clock)]
    flop_per_cycle: dict[Precision, PerCycle]

    @model_validator(mode="before")
    @classmethod
    def _all_four(cls, data: Any) -> Any:
        _mapping(data, "{field} must be a mapping")
        missing = [key for key in CORE_KEYS if data.get(key) in (None, "", {})]
        if missing:
            refuse(
                f"{{field}} is missing {', '.join(missing)}",
                "a CPU's peaks follow from cores x clock_ghz x flop_per_cycle; give all four",
            )
        return data

    def record(self) -> CoreGroup:
        return CoreGroup(
            cores=self.cores,
            clock_ghz=self.clock_ghz,
            clock=self.clock,
            flop_per_cycle={p: item.value for p, item in self.flop_per_cycle.items()},
            how={p: " ".join(item.how.split()) for p, item in self.flop_per_cycle.items()},
            name=self.name,
        )


class NodeLink(_Schema):
    """`intra_node_link: {name: NVLink 4, gbps: 900, bidirectional: true, source: URL}`."""

    name: Text
    gbps: Number
    bidirectional: Annotated[bool, BeforeValidator(_flag)]
    source: MaybeText = None

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        return _mapping(data, "{field} must be a mapping of name, gbps, bidirectional, source")

    def record(self) -> Link:
        return Link(self.name, self.gbps, self.bidirectional, self.source)


class Entry(_Schema):
    """One accelerator or CPU of a catalogue file; `vendor` and `kind` may come from the file."""

    id: Text
    name: Text
    vendor: Text
    kind: Kind = DEFAULT_KIND
    peak_tflops: Peaks
    aliases: Texts = ()
    year: Annotated[int | None, BeforeValidator(_year)] = None
    form_factor: MaybeText = None
    sparse_peak_tflops: Peaks = {}
    memory_gb: MaybeNumber = None
    memory_bandwidth_gbps: MaybeNumber = None
    tdp_w: MaybeNumber = None
    sources: Texts = ()
    notes: MaybeText = None
    intra_node_link: NodeLink | None = None
    host_link: NodeLink | None = None  # to the host's memory: PCIe, NVLink-C2C
    # kind: cpu only: one kind of core on the entry (`cores`, ...), or `core_groups`; the memory channels
    cores: MaybeWhole = None
    clock_ghz: MaybeNumber = None
    clock: Any = None
    flop_per_cycle: Any = None
    core_groups: list[Cores] | None = None
    memory_channels: MaybeWhole = None
    memory_mt_s: MaybeNumber = None

    @model_validator(mode="before")
    @classmethod
    def _file_defaults_and_required(cls, data: Any, info: ValidationInfo) -> Any:
        _mapping(data, "must be a mapping with id, name, peak_tflops, ...")
        values = {key: value for key, value in data.items() if not (key in REQUIRED_KEYS and value in (None, "", {}))}
        for key, default in (info.context or {}).items():
            values.setdefault(key, default)
        if values.get("id") is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", str(values["id"])):
            refuse(f"id {values['id']!r} may hold only letters, digits, '-', '_' and '.'")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Entry:
        for precision, sparse in self.sparse_peak_tflops.items():
            dense = self.peak_tflops.get(precision)
            if dense is None:
                refuse(
                    f"sparse_peak_tflops.{precision} has no dense peak_tflops.{precision}",
                    "store the dense figure (half the 2:4-sparse one) in peak_tflops",
                )
            if abs(sparse / dense - 2.0) > 2.0 * SPARSE_RATIO_TOLERANCE:
                refuse(
                    f"sparse {precision} peak {sparse:g} is not 2x the dense {dense:g}",
                    "2:4 sparsity doubles the dense peak; check which figure the datasheet printed",
                )
        given = [key for key in CPU_ONLY_KEYS if getattr(self, key) is not None]
        if self.kind != "cpu" and given:
            refuse(
                f"{', '.join(given)} apply only to kind: cpu entries, this one is {self.kind}",
                "add kind: cpu or drop them",
            )
        if self.kind == "cpu":
            _check_cpu_peaks(self.peak_tflops, self.groups())
            self.cpu_bandwidth()
        return self

    def groups(self) -> tuple[CoreGroup, ...]:
        """A kind-cpu entry's cores: the four core keys on the entry, or its `core_groups`."""
        flat = [key for key in CORE_KEYS if getattr(self, key) is not None]
        if self.core_groups is not None and flat:
            refuse(f"give either {', '.join(flat)} or core_groups, not both")
        if self.core_groups is None:
            if not flat:
                refuse(
                    "a kind: cpu entry needs cores, clock_ghz, clock and flop_per_cycle (or core_groups)",
                    "its peaks are checked against cores x clock x FLOP per cycle",
                )
            try:
                cores = Cores.model_validate({key: getattr(self, key) for key in CORE_KEYS})
            except ValidationError as error:  # said of the entry's own keys
                problem = first_problem(error)
                message = problem.message.strip()
                refuse(f"the entry {message}" if message.startswith("is missing") else message, problem.hint)
            return (cores.record(),)
        if not self.core_groups:
            refuse("core_groups must be a non-empty list of {name, cores, clock_ghz, clock, flop_per_cycle}")
        return tuple(group.record() for group in self.core_groups)

    def cpu_bandwidth(self) -> float | None:
        """memory_bandwidth_gbps, checked against (or filled in from) channels x MT/s x 8 B when they are given."""
        given = [key for key in ("memory_channels", "memory_mt_s") if getattr(self, key) is not None]
        if not given:
            return self.memory_bandwidth_gbps
        if len(given) == 1:
            refuse(f"{given[0]} needs memory_channels and memory_mt_s together")
        expected = (
            exact_decimal(self.memory_channels) * exact_decimal(self.memory_mt_s) * BYTES_PER_CHANNEL_TRANSFER / 1000
        )
        if self.memory_bandwidth_gbps is not None and exact_decimal(self.memory_bandwidth_gbps) != expected:
            refuse(
                f"memory_bandwidth_gbps {plain(self.memory_bandwidth_gbps)} is not memory_channels x memory_mt_s x "
                f"{BYTES_PER_CHANNEL_TRANSFER} B = {self.memory_channels} x {plain(self.memory_mt_s)} x "
                f"{BYTES_PER_CHANNEL_TRANSFER} / 1000 = {expected.normalize():f} GB/s",
                "fix the bandwidth or the channels / transfer rate",
            )
        return float(expected)

    def record(self, origin: str) -> Accelerator:
        cpu = self.kind == "cpu"
        return Accelerator(
            id=self.id,
            name=self.name,
            vendor=self.vendor,
            kind=self.kind,
            peak_tflops=dict(self.peak_tflops),
            aliases=tuple(
                alias for alias in dict.fromkeys(self.aliases) if normalize_name(alias) != normalize_name(self.id)
            ),
            year=self.year,
            form_factor=self.form_factor,
            sparse_peak_tflops=dict(self.sparse_peak_tflops),
            memory_gb=self.memory_gb,
            memory_bandwidth_gbps=self.cpu_bandwidth() if cpu else self.memory_bandwidth_gbps,
            tdp_w=self.tdp_w,
            sources=self.sources,
            notes=" ".join(self.notes.split()) if self.notes else None,
            origin=origin,
            intra_node_link=self.intra_node_link.record() if self.intra_node_link else None,
            host_link=self.host_link.record() if self.host_link else None,
            core_groups=self.groups() if cpu else (),
            memory_channels=self.memory_channels,
            memory_mt_s=self.memory_mt_s,
        )


def _check_cpu_peaks(dense: Mapping[str, float], groups: tuple[CoreGroup, ...]) -> None:
    """Every peak of a CPU equals the sum over its core groups of cores x clock_ghz x flop_per_cycle / 1000."""
    derived = {p for group in groups for p in group.flop_per_cycle}
    for precision in PRECISIONS:
        if precision not in derived and precision not in dense:
            continue
        expected = sum((group.peak_tflops(precision) for group in groups), Decimal(0))
        formula = " + ".join(
            f"{group.cores} x {plain(group.clock_ghz)} x {plain(group.flop_per_cycle[precision])}"
            for group in groups
            if precision in group.flop_per_cycle
        )
        if precision not in derived:
            refuse(
                f"peak_tflops.{precision} has no flop_per_cycle.{precision}",
                "a CPU peak must follow from cores x clock x FLOP per cycle; give how",
            )
        if precision not in dense:
            refuse(
                f"flop_per_cycle.{precision} has no peak_tflops.{precision}",
                f"add peak_tflops.{precision}: {expected.normalize():f} (= ({formula}) / 1000)",
            )
        if exact_decimal(dense[precision]) != expected:
            refuse(
                f"peak_tflops.{precision} {plain(dense[precision])} is not cores x clock_ghz x flop_per_cycle / 1000"
                f" = ({formula}) / 1000 = {expected.normalize():f}",
                "fix the peak or the per-core figures",
            )


class CatalogFile(_Schema):
    """A catalogue file: `gpus:` entries, with a `vendor` and `kind` its entries default to."""

    vendor: MaybeText = None
    kind: Kind = DEFAULT_KIND
    gpus: list[Any]


# ---------------------------------------------------------------- from YAML to records, errors to one line

_KEYS_OF = {"intra_node_link": NodeLink, "host_link": NodeLink, "core_groups": Cores, "": Entry}


def parse_catalog(data: Any, path: Path) -> list[Accelerator]:
    """The validated entries of one parsed catalogue file; CatalogError naming the file, entry and key."""
    if isinstance(data, list):
        data = {"gpus": data}
    if not isinstance(data, Mapping) or "gpus" not in data:
        raise CatalogError(f"{path}: a GPU catalogue is a mapping with a 'gpus:' list", "see docs/catalogue.md")
    layout = validated(CatalogFile, data, lambda problem: _say_file_level(problem, path), CatalogError)
    if not layout.gpus:
        raise CatalogError(f"{path}: 'gpus:' must be a non-empty list of entries")
    defaults = {"kind": layout.kind, **({"vendor": layout.vendor} if layout.vendor else {})}
    return [_entry(raw, number, path, defaults) for number, raw in enumerate(layout.gpus, 1)]


def _entry(raw: Any, number: int, path: Path, defaults: Mapping[str, str]) -> Accelerator:
    label = raw.get("id") if isinstance(raw, Mapping) else None
    where = f"{path}: entry #{number}" + (f" ({label!r})" if label else "")

    def said_of_the_entry(problem: Problem) -> tuple[str, str | None]:
        message, hint = _say(problem)
        return f"{where}: {message}", hint

    return validated(Entry, raw, said_of_the_entry, CatalogError, context=defaults).record(str(path))


def _say_file_level(problem: Problem, path: Path) -> tuple[str, str | None]:
    """What is wrong above the entries: an unknown key, `gpus:` not a list, or the file's `vendor` or `kind`."""
    if problem.kind == "unknown":
        return f"{path}: unknown top-level key(s) {', '.join(problem.keys)}", "allowed: vendor, kind, gpus"
    if problem.loc[:1] == ("gpus",):
        return f"{path}: 'gpus:' must be a non-empty list of entries", None
    return f"{path}: file-level: {_say(problem)[0]}", None


def _say(problem: Problem) -> tuple[str, str | None]:
    """A problem in the catalogue's words: `peak_tflops.bf16 must be > 0`, `missing peak_tflops`."""
    place = dotted(problem.loc)
    owner = _KEYS_OF.get(str(next((part for part in reversed(problem.loc) if isinstance(part, str)), "")), Entry)
    keys = ", ".join(problem.keys)
    prefix = f"{place}: " if place else ""
    if problem.kind == "unknown":
        return f"{prefix}unknown key(s) {keys}", f"allowed: {', '.join(sorted(owner.model_fields))}"
    if problem.kind == "missing":
        hint = (
            "every entry needs id, name, vendor and peak_tflops"
            if not place
            else f"keys: {', '.join(owner.model_fields)}"
        )
        return f"{prefix}missing {keys}", hint
    if problem.kind == "not_mapping":
        return f"{place} must be a mapping, got {problem.value!r}", None
    if problem.kind == "not_list":
        return f"{place} must be a list, got {problem.value!r}", None
    if problem.kind == "own":
        return problem.message, problem.hint
    return f"{place}: {problem.message}, got {problem.value!r}", None
