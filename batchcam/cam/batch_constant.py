"""Per-image CAMs through train-mode BatchNorm: the batch's statistics held constant.

In train mode a BatchNorm after the CAM layer normalises every image with the batch's mean and
variance, so the gradient of the summed class scores w.r.t. image i's activations also carries the
other images' scores, through those statistics: a batched Grad-CAM then mixes images (see
``batch_mixing``). Holding the statistics constant (computed from the batch as train mode does,
then detached) keeps every forward value of train mode and leaves only the direct path: image i's
CAM is the Grad-CAM of a network whose BatchNorms after the layer are fixed affine maps, the same
for every image. It is eval mode with the batch's statistics in place of the running averages,
which early in training describe other weights.

The pass is a rewritten copy of the train graph, not hooks or toggled module state, so nothing
changes for the model's own forward. Every BatchNorm in the copy leaves its running averages alone:
the caller's ordinary forward pass (its cross-entropy's) is the one that updates them, once a step.
BatchNorm layers before the CAM layer keep their full train-mode gradient in the copy, as they have
in that ordinary pass.
"""

from __future__ import annotations

import copy
from typing import cast

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

from batchcam.cam.batch_mixing import is_train_mode_functional_batchnorm, nodes_between
from batchcam.errors import LayerError

# Exactly these: a subclass may compute something else (timm's BatchNormAct2d adds an activation).
_PLAIN_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def constant_statistics_norm(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """Train-mode BatchNorm's output, with the batch's mean and (biased) variance as constants."""
    dims = (0, *range(2, x.ndim))
    batch = x.detach()
    if batch.element_size() < 4:  # float32 statistics of half inputs, as BatchNorm's kernels keep them
        batch = batch.float()
    mean, var = batch.mean(dims), batch.var(dims, unbiased=False)
    return F.batch_norm(x, mean, var, weight, bias, training=False, momentum=0.0, eps=eps)


def batch_statistics_norm(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """Train-mode BatchNorm, gradient through the statistics included, without a running-average update."""
    return F.batch_norm(x, None, None, weight, bias, training=True, momentum=0.0, eps=eps)


def constant_statistics_graph(train_graph: fx.GraphModule, start: str, end: str) -> fx.GraphModule:
    """A copy of ``train_graph`` (outputs ``start``, ``end``) in which the BatchNorm modules between
    the two hold their batch statistics constant, and no BatchNorm updates its running averages.

    Raises ``LayerError`` for BatchNorm the copy could not rewrite faithfully: a functional call in
    train mode, a BatchNorm subclass, or one inside a module the tracer kept whole.
    """
    graph = copy.deepcopy(train_graph.graph)
    after_layer = nodes_between(graph, start, end)
    for node in list(graph.nodes):
        if is_train_mode_functional_batchnorm(node):
            raise _unsupported(f"the functional batch_norm call {node.name!r}")
        if node.op != "call_module":
            continue
        module = train_graph.get_submodule(str(node.target))
        if type(module) in _PLAIN_BATCH_NORMS:
            _replace(graph, node, cast(_BatchNorm, module), constant=node in after_layer)
        elif any(isinstance(inner, _BatchNorm) for inner in module.modules()):
            raise _unsupported(f"{type(module).__name__} {node.target!r}")
    graph.lint()
    # Modules and parameters come from ``train_graph`` by reference: the CAM loss trains the model's own.
    return fx.GraphModule(train_graph, graph)


def _replace(graph: fx.Graph, node: fx.Node, module: _BatchNorm, *, constant: bool) -> None:
    with graph.inserting_before(node):
        weight = graph.get_attr(f"{node.target}.weight") if module.affine else None
        bias = graph.get_attr(f"{node.target}.bias") if module.affine else None
        norm = constant_statistics_norm if constant else batch_statistics_norm
        replacement = graph.call_function(norm, (node.args[0], weight, bias, float(module.eps)))
    node.replace_all_uses_with(replacement)
    graph.erase_node(node)


def _unsupported(what: str) -> LayerError:
    return LayerError(
        f"cannot hold the batch statistics constant in the loss's CAMs: {what} is not a plain "
        "BatchNorm module the traced graph can rewrite. Use cam_batch_statistics='differentiable', or "
        "a layer after the last BatchNorm."
    )
