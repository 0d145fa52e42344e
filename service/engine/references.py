"""How named conditions and scores use each other: no cycles, and a bounded depth.

A condition may compare a score and a score's components may name conditions, and evaluation
recurses through every such use. A cycle would recurse on every hook call until Python stops
it, taking the red-flag cards with it; a long enough chain would do the same. Both are refused
when the rule set is compiled. The checks walk the graph without recursion, so a chain of any
length cannot break the compiler itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from graphlib import TopologicalSorter

from service.engine.compiled import ScoreDef
from service.engine.conditions import MAX_CONDITION_DEPTH, Node, nesting_depth, references
from service.engine.rulefiles import Entry, RuleFiles
from service.yamlsource import ConfigError

Key = tuple[str, str]  # ("condition" | "score", name)
SECTIONS = {"condition": "conditions", "score": "scores"}


def reference_errors(files: RuleFiles, conditions: Mapping[str, Node],
                     scores: Mapping[str, ScoreDef]) -> list[ConfigError]:
    """One error per cycle; without cycles, one per chain that nests past the limit."""
    nodes: dict[Key, Sequence[Node]] = {("condition", n): (node,) for n, node in conditions.items()}
    nodes |= {("score", n): tuple(when for _, when in s.components) for n, s in scores.items()}
    graph = {key: set().union(*map(references, whens)) & nodes.keys() for key, whens in nodes.items()}
    cycles = [group for group in _strongly_connected(graph)
              if len(group) > 1 or group[0] in graph[group[0]]]
    if cycles:
        return [_cycle_error(files, group) for group in cycles]
    return _depth_errors(files, nodes, graph)


def _entry(files: RuleFiles, key: Key) -> Entry:
    return files.sections[SECTIONS[key[0]]][key[1]]


def _cycle_error(files: RuleFiles, group: list[Key]) -> ConfigError:
    """Located at the member written first, naming the others."""
    group = sorted(group, key=lambda k: (_entry(files, k).doc.path, _entry(files, k).line))
    (kind, name), others = group[0], group[1:]
    through = ", ".join(f"{k} `{n}`" for k, n in others)
    return _entry(files, group[0]).error((), (
        f"{kind} `{name}` uses itself" + (f" through {through}" if through else "")),
        "a condition or score cannot depend on its own value: evaluating it would never end")


def _depth_errors(files: RuleFiles, nodes: Mapping[Key, Sequence[Node]],
                  graph: Mapping[Key, set[Key]]) -> list[ConfigError]:
    """Measured leaves first; only the first member past the limit is named, not every one
    that uses it."""
    depth: dict[Key, int] = {}
    errors = []
    for key in TopologicalSorter(graph).static_order():
        depth[key] = max((nesting_depth(w, depth) for w in nodes[key]), default=0) + (key[0] == "score")
        if depth[key] > MAX_CONDITION_DEPTH and all(depth[k] <= MAX_CONDITION_DEPTH for k in graph[key]):
            errors.append(_entry(files, key).error((), (
                f"{key[0]} `{key[1]}` nests {depth[key]} levels deep with the named conditions and "
                f"scores it uses, more than {MAX_CONDITION_DEPTH}"),
                "each condition or score it names counts its own levels; shorten the chain"))
    return errors


def _strongly_connected(graph: Mapping[Key, set[Key]]) -> list[list[Key]]:
    """Tarjan's algorithm with an explicit stack: the groups of nodes that reach each other."""
    index: dict[Key, int] = {}
    low: dict[Key, int] = {}
    stack: list[Key] = []
    on_stack: set[Key] = set()
    groups: list[list[Key]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[Key, Iterator[Key]]] = []
        child: Key | None = root
        while True:
            if child is not None and child not in index:  # enter it
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child is not None and child in on_stack:
                low[work[-1][0]] = min(low[work[-1][0]], index[child])
            if not work:
                break
            node, children = work[-1]
            child = next(children, None)
            if child is None:  # leave it
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    groups.append(_pop_group(stack, on_stack, node))
    return groups


def _pop_group(stack: list[Key], on_stack: set[Key], node: Key) -> list[Key]:
    group: list[Key] = []
    while not group or group[-1] != node:
        group.append(stack.pop())
        on_stack.discard(group[-1])
    return group
