"""Which BatchNorm layers lie between a CAM layer and the logits of a traced split.

In train mode BatchNorm normalises with the batch's statistics, so each image's logits depend on
every image's activations: a CAM taken from one backward pass of the batch is then not per-image
Grad-CAM. The trainer warns when a CAM loss would train through such a layer, unless the loss's
CAMs hold those statistics constant (``batch_constant``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import fx, nn

_FUNCTIONAL_BATCH_NORMS = (F.batch_norm, torch.batch_norm)
_TRAINING_ARGUMENT = 5  # ``training`` is the sixth argument of both


def batchnorm_between(graph_module: fx.GraphModule, start: str, end: str) -> tuple[str, ...]:
    """Names of the BatchNorm modules (or functional calls) on a path from output ``start`` to ``end``."""
    between = nodes_between(graph_module.graph, start, end)
    names: list[str] = []
    for node in graph_module.graph.nodes:  # graph order: the first name is the first layer hit
        if node in between:
            names += _batchnorm_names(graph_module, node)
    return tuple(dict.fromkeys(names))  # a module called twice is named once


def nodes_between(graph: fx.Graph, start: str, end: str) -> set[fx.Node]:
    """The nodes on a path from graph output ``start`` to output ``end``, ``start``'s own node excluded
    (a CAM *at* a BatchNorm's output still has per-image gradients)."""
    output = next(node for node in graph.nodes if node.op == "output")
    returned = output.args[0]
    between = _reachable(returned[start], lambda node: node.users) & _reachable(
        returned[end], lambda node: node.all_input_nodes
    )
    between.discard(returned[start])
    return between


def is_train_mode_functional_batchnorm(node: fx.Node) -> bool:
    """A ``batch_norm`` call traced with ``training=True`` (one that normalises with batch statistics)."""
    if node.op != "call_function" or node.target not in _FUNCTIONAL_BATCH_NORMS:
        return False
    return bool(node.kwargs.get("training", _positional(node, _TRAINING_ARGUMENT, default=False)))


def _reachable(node: fx.Node, neighbours: Callable[[fx.Node], Iterable[fx.Node]]) -> set[fx.Node]:
    seen = {node}
    frontier = [node]
    while frontier:
        for neighbour in neighbours(frontier.pop()):
            if neighbour not in seen:
                seen.add(neighbour)
                frontier.append(neighbour)
    return seen


def _batchnorm_names(graph_module: fx.GraphModule, node: fx.Node) -> list[str]:
    if node.op == "call_function" and node.target in _FUNCTIONAL_BATCH_NORMS:
        return [node.name] if is_train_mode_functional_batchnorm(node) else []
    if node.op != "call_module":
        return []
    # A leaf module fx did not trace into may hold BatchNorm layers of its own.
    module = graph_module.get_submodule(str(node.target))
    return [
        ".".join(filter(None, (str(node.target), name)))
        for name, inner in module.named_modules()
        if isinstance(inner, nn.modules.batchnorm._BatchNorm)
    ]


def _positional(node: fx.Node, index: int, default: object) -> object:
    return node.args[index] if len(node.args) > index else default
