"""emit-spec's writing half: identical submodules folded into ``blocks:`` (:class:`_Blocks`), and the spec's YAML
(:func:`_text`), with comments where a module runs again or weights are tied."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..blocks import is_merge
from ..layers import lookup
from ..layers.catalog import module_of
from .fx_rows import CONTAINERS, INPUT, Entry
from .report import VerifyReport

# -- blocks -----------------------------------------------------------------------------------


@dataclass
class _Instance:
    path: str
    cls: str
    start: int
    stop: int  # entries[start:stop]
    source: str  # the one value from outside it reads
    signature: Any = None
    values: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Block:
    name: str
    params: list[str]
    layers: list[tuple[Entry, dict[str, Any]]]  # (model entry of the first instance, its args with $params)
    instances: list[tuple[_Instance, dict[str, Any]]]  # (instance, its param values)


class _Blocks:
    """Identical submodules (same class, same layers and wiring, arguments that may differ) that the
    graph runs as self-contained runs of rows become ``blocks:``; outermost first, one level."""

    def __init__(self, entries: list[Entry], output: str) -> None:
        self.entries = entries
        self.output = output
        self.index = {e.name: i for i, e in enumerate(entries)}

    def find(self) -> dict[str, Block]:
        candidates: dict[str, _Instance] = {}
        for i, entry in enumerate(self.entries):
            for path, cls in entry.scopes:
                if cls.rsplit(".", 1)[-1] in CONTAINERS and cls.startswith("torch.nn."):
                    continue
                found = candidates.get(path)
                if found is None:
                    candidates[path] = _Instance(path, cls, i, i + 1, "")
                elif found.stop == i:
                    found.stop = i + 1
                else:
                    found.start = -1  # not one run of rows
        valid = [inst for inst in candidates.values() if inst.start >= 0 and self._closed(inst)]
        taken: list[tuple[int, int]] = []
        blocks: dict[str, Block] = {}
        depth = sorted(valid, key=lambda inst: (inst.path.count("."), inst.start))
        groups: dict[Any, list[_Instance]] = {}
        order: list[Any] = []
        for inst in depth:
            inst.signature = self._signature(inst)
            key = (inst.path.count("."), inst.cls, inst.signature)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(inst)
        used_names: set[str] = set()
        for key in order:
            members = [m for m in groups[key] if not any(a <= m.start and m.stop <= b for a, b in taken)]
            members = [m for m in members if not any(m.start < b and a < m.stop for a, b in taken)]
            if len(members) < 2 or members[0].stop - members[0].start < 2:
                continue
            block = self._block(members, used_names)
            blocks[block.name] = block
            taken.extend((m.start, m.stop) for m in members)
        return blocks

    def _closed(self, inst: _Instance) -> bool:
        inside = {e.name for e in self.entries[inst.start : inst.stop]}
        sources = {s for e in self.entries[inst.start : inst.stop] for s in e.inputs if s not in inside}
        if len(sources) != 1:
            return False
        inst.source = next(iter(sources))
        last = self.entries[inst.stop - 1].name
        for e in self.entries[inst.stop :]:
            if any(s in inside and s != last for s in e.inputs) or (e.tie in inside):
                return False
        for e in self.entries[inst.start : inst.stop]:
            if e.tie is not None and e.tie not in inside:
                return False
        return not (self.output in inside and self.output != last)

    def _locals(self, inst: _Instance) -> dict[str, str]:
        names: dict[str, str] = {}
        taken: set[str] = {INPUT}
        for e in self.entries[inst.start : inst.stop]:
            base = e.target[len(inst.path) + 1 :] if e.target.startswith(inst.path + ".") else e.target
            word = re.sub(r"\W", "_", base)
            if not re.match(r"[A-Za-z_]", word):
                word = "n" + word
            candidate, number = word, 1
            while candidate in taken:
                number += 1
                candidate = f"{word}_{number}"
            taken.add(candidate)
            names[e.name] = candidate
        return names

    def _signature(self, inst: _Instance) -> Any:
        local = self._locals(inst)
        rows = []
        values = []
        for e in self.entries[inst.start : inst.stop]:
            full = _full_args(e)
            inputs = tuple(INPUT if s == inst.source else local.get(s, "?") for s in e.inputs)
            rows.append((local[e.name], e.type, tuple(sorted(full)), inputs, local.get(e.tie) if e.tie else None, e.trainable, local.get(e.again) if e.again else None, e.tied))
            values.append(full)
        inst.values = values
        return tuple(rows)

    def _block(self, members: list[_Instance], used: set[str]) -> Block:
        first = members[0]
        base = re.sub(r"\W", "_", first.cls.rsplit(".", 1)[-1]).lower().lstrip("_") or "block"
        if module_of(base) is not None or base == INPUT:
            base = f"{base}_block"
        name, number = base, 1
        while name in used:
            number += 1
            name = f"{base}_{number}"
        used.add(name)
        params: list[str] = []
        columns: dict[tuple[Any, ...], str] = {}
        layers = []
        per_member: list[dict[str, Any]] = [{} for _ in members]
        for position, e in enumerate(self.entries[first.start : first.stop]):
            args: dict[str, Any] = {}
            keys = [*e.args, *(k for k in first.values[position] if k not in e.args)]
            for key in keys:
                column = tuple(_freeze(m.values[position][key]) for m in members)
                if len(set(column)) == 1:
                    if key in e.args:
                        args[key] = e.args[key]
                    continue
                param = columns.get(column)
                if param is None:
                    param, suffix = key, 1
                    while param in params:
                        suffix += 1
                        param = f"{key}_{suffix}"
                    params.append(param)
                    columns[column] = param
                    for j, m in enumerate(members):
                        per_member[j][param] = m.values[position][key]
                args[key] = f"${param}"
            layers.append((e, args))
        return Block(name, params, layers, list(zip(members, per_member)))


def _full_args(entry: Entry) -> dict[str, Any]:
    """The entry's arguments with every default of its family filled in (so that instances that
    leave different arguments at their defaults still compare)."""
    _, family = lookup(entry.type)
    full = {}
    for key, default in family.PARAMS.items():
        if key in ("in_channels", "in_features", "num_features", "num_channels"):
            continue
        full[key] = entry.args.get(key, default)
    for key, value in entry.args.items():
        full.setdefault(key, value)
    return full


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return (type(value).__name__, value)


# -- text -------------------------------------------------------------------------------------


def _flow(value: Any) -> str:
    import yaml  # type: ignore[import-untyped]

    return str(yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True, sort_keys=False)).strip().removesuffix("...").strip()


def _entry_text(type_name: str, args: dict[str, Any], name: str, inputs: list[str], previous: str, tie: str | None, trainable: bool,
                merge: bool) -> dict[str, Any]:
    if merge:
        value: Any = list(inputs) if not args else {"from": list(inputs), **args}
        data: dict[str, Any] = {type_name: value, "name": name}
    else:
        data = {type_name: dict(args), "name": name}
        if inputs[0] != previous:
            data["from"] = inputs[0]
    if tie is not None:
        data["tie"] = tie
    if not trainable:
        data["trainable"] = False
    return data


def _text(report: VerifyReport, entries: list[Entry], blocks: dict[str, Block], checks: Sequence[str] = (), batch_bound: Sequence[str] = (),
          sized: Sequence[str] = ()) -> str:
    """The spec's YAML: a header, ``blocks:`` if any, ``layers:`` (one entry a line, comments where
    a module runs again or weights are tied). Sets each entry's ``row`` (its name in the spec)."""
    lines = [
        f"# written by convcalc verify --emit-spec from {report.name} (torch {report.torch_version}), traced with torch.fx",
        f"name: {_flow(report.name)}",
        f"input: {_flow(list(report.input_shape[1:]))}",
    ]
    if checks:
        lines.insert(1, f"# dropped: torch._assert checks ({', '.join(checks)}), which hold for this input")
    if sized:
        lines.insert(1, f"# for this input's sizes: {', '.join(sized)} use(s) a number computed from them (x * x.size(1))")
    if batch_bound:
        lines.insert(1, f"# for batch {report.input_shape[0]} only: {', '.join(batch_bound)} reshape(s) across the batch dimension")
    starts: dict[int, tuple[Block, _Instance, dict[str, Any]]] = {}
    for block in blocks.values():
        for inst, values in block.instances:
            starts[inst.start] = (block, inst, values)
    if blocks:
        lines.append("")
        lines.append("blocks:")
        for block in blocks.values():
            first = block.instances[0][0]
            lines.append(f"  {block.name}:  # {first.cls.rsplit('.', 1)[-1]}, used {len(block.instances)} times")
            if block.params:
                lines.append(f"    params: {_flow(block.params)}")
            lines.append("    layers:")
            local = _Blocks(entries, "")._locals(first)
            previous = INPUT
            for e, args in block.layers:
                inputs = [INPUT if s == first.source else local[s] for s in e.inputs]
                item = _entry_text(e.type, args, local[e.name], inputs, previous, local.get(e.tie) if e.tie else None, e.trainable,
                                   is_merge(e.type))
                lines.append(f"      - {_flow(item)}" + _comment(e, local, first.path))
                previous = local[e.name]
    lines.append("")
    lines.append("layers:")
    previous = INPUT
    outer: dict[str, str] = {}  # entry name → the name the top level refers to it by
    users: dict[str, set[int]] = {}  # entry name → the entries that read it
    for position, e in enumerate(entries):
        for source in e.inputs:
            users.setdefault(source, set()).add(position)
    index = 0
    while index < len(entries):
        found = starts.get(index)
        if found is not None:
            block, inst, values = found
            run = [inst]
            while True:  # copies one after another, layer1.0, layer1.1 …: one entry with repeat:
                following = starts.get(run[-1].stop)
                if following is None or following[0] is not block or following[2] != values:
                    break
                if following[1].source != entries[run[-1].stop - 1].name:
                    break
                if any(not following[1].start <= u < following[1].stop for u in users.get(following[1].source, ())):
                    break  # the copy's output is read after the next copy too (HGNet's concat of every layer): no repeat
                run.append(following[1])
            prefix = inst.path.rsplit(".", 1)[0] if "." in inst.path else ""
            numbered = len(run) > 1 and prefix and all(m.path == f"{prefix}.{j}" for j, m in enumerate(run))
            run = run if numbered else [inst]
            use = _word(prefix if numbered else inst.path, "b")
            data: dict[str, Any] = {block.name: dict(values), "name": use}
            source = outer.get(inst.source, inst.source)
            if source != previous:
                data["from"] = source
            if numbered:
                data["repeat"] = len(run)
            lines.append(f"  - {_flow(data)}")
            for j, member in enumerate(run):
                local = _Blocks(entries, "")._locals(member)
                for e in entries[member.start : member.stop]:
                    e.row = f"{use}.{j}.{local[e.name]}" if numbered else f"{use}.{local[e.name]}"
            last = entries[run[-1].stop - 1]
            outer[last.name] = use
            previous = use
            index = run[-1].stop
            continue
        e = entries[index]
        inputs = [outer.get(s, s) for s in e.inputs]
        tie = outer.get(e.tie, e.tie) if e.tie else None
        data = _entry_text(e.type, e.args, e.name, inputs, previous, tie, e.trainable, is_merge(e.type))
        lines.append(f"  - {_flow(data)}" + _comment(e, outer))
        e.row = e.name
        outer[e.name] = e.name
        previous = e.name
        index += 1
    return "\n".join(lines) + "\n"


def _comment(entry: Entry, names: dict[str, str], within: str = "") -> str:
    """Says where a module runs again, or has another module's parameters (paths inside ``within``)."""
    target = entry.target[len(within) + 1 :] if within and entry.target.startswith(within + ".") else entry.target
    if entry.again is not None:
        first = names.get(entry.again, entry.again)
        shared = ": the same parameters, counted once (tie:)" if entry.tie is not None else ""
        return f"  # the module {target!r} again, as at {first!r}{shared}"
    if entry.tied and entry.tie is not None:
        return f"  # {target!r} has the parameters of {names.get(entry.tie, entry.tie)!r} (tied weights), counted once"
    return ""


def _word(text: str, lead: str = "n") -> str:
    """``layer2.0`` → ``layer2_0``: a name a spec accepts."""
    word = re.sub(r"\W", "_", text) or lead
    return word if re.match(r"[A-Za-z_]", word) else lead + word
