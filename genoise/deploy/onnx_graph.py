"""Two rewrites of an exported ONNX graph that ONNX Runtime's own optimiser does not make.

At batch 1 a small network's time is spent as much between its multiply-adds as in them
(LeCun, ISSCC 2019: inference hardware must be efficient at batch size 1), so the tail of
a classifier matters:

- **Global average pooling.** ``h.mean(dim=(2, 3))`` exports as ``ReduceMean`` over the
  spatial axes. ONNX Runtime keeps it outside its blocked (NCHWc) convolution layout, so
  the feature map is first reordered back to NCHW, and in an int8 graph it is dequantised,
  averaged in fp32 and quantised again. Written as ``GlobalAveragePool`` (then ``Flatten``
  when the reduced axes are dropped), it stays in the convolutions' layout and has an int8
  kernel (``QLinearGlobalAveragePool``). Same numbers: both are the mean over H × W.
- **Consecutive affine layers.** Two ``Gemm`` nodes with nothing between them, such as an
  encoder's linear head followed by a linear probe, compose into one:

      y = (x W₁ᵀ + b₁) W₂ᵀ + b₂ = x (W₂ W₁)ᵀ + (W₂ b₁ + b₂),

  the product computed in float64 and stored in the weights' dtype. One product instead of
  two at every call, and one quantise/dequantise boundary fewer in int8. Folded only when
  the first node's output feeds nothing else and is not a graph output, both nodes have
  α = β = 1 and no transposed input, and their weights and biases are constants
  (initializers).

:func:`simplify_for_inference` applies both and drops the initializers left unused; the
result computes the same function (to float32 rounding for the fold). On the CIFAR
ConvNet + probe of ``benchmarks/inference.py`` the batch-1 call of the int8 model went from
32.4 to 27.9 µs, the fp32 one from 43.6 to 40.1 µs (one thread, medians of three
fresh-process rounds).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _reduce_axes(node: Any, constants: dict[str, np.ndarray]) -> list[int] | None:
    """The axes of a ReduceMean node (input since opset 18, attribute before), or None when
    they are not a constant."""
    attributes = _attributes(node)
    if "axes" in attributes:
        return [int(a) for a in attributes["axes"]]
    if len(node.input) > 1 and node.input[1]:
        value = constants.get(node.input[1])
        return None if value is None else [int(a) for a in np.asarray(value).reshape(-1)]
    return None


def _global_pool(model: Any, constants: dict[str, np.ndarray], ranks: dict[str, int]) -> int:
    """ReduceMean over axes {2, 3} of a 4-D tensor → GlobalAveragePool (+ Flatten when
    ``keepdims=0``). Returns the number of nodes rewritten."""
    from onnx import helper

    nodes, done = [], 0
    for node in model.graph.node:
        axes = _reduce_axes(node, constants) if node.op_type == "ReduceMean" else None
        rank = ranks.get(node.input[0]) if node.input else None
        if axes is None or rank != 4 or sorted(a % 4 for a in axes) != [2, 3]:
            nodes.append(node)
            continue
        keep = bool(_attributes(node).get("keepdims", 1))
        out = node.output[0]
        pooled = out if keep else f"{out}__global_pool"
        pool = helper.make_node("GlobalAveragePool", [node.input[0]], [pooled], name=f"{node.name}__pool")
        nodes.append(pool)
        if not keep:
            nodes.append(helper.make_node("Flatten", [pooled], [out], name=f"{node.name}__flatten", axis=1))
        done += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return done


def _plain_gemm(node: Any, constants: dict[str, np.ndarray]) -> bool:
    """A Gemm y = x·op(W) + b with α = β = 1, x not transposed, W and b constants."""
    if node.op_type != "Gemm":
        return False
    attributes = _attributes(node)
    if attributes.get("alpha", 1.0) != 1.0 or attributes.get("beta", 1.0) != 1.0:
        return False
    if attributes.get("transA", 0):
        return False
    weights_constant = node.input[1] in constants
    bias_constant = len(node.input) < 3 or not node.input[2] or node.input[2] in constants
    return weights_constant and bias_constant


def _affine(node: Any, constants: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) in float64 with y = x Wᵀ + b for a plain Gemm (W of shape out × in)."""
    weight = constants[node.input[1]].astype(np.float64)
    weight = weight if _attributes(node).get("transB", 0) else weight.T
    has_bias = len(node.input) > 2 and node.input[2]
    bias = constants[node.input[2]].astype(np.float64) if has_bias else np.zeros(weight.shape[0])
    return weight, np.broadcast_to(bias.reshape(-1), (weight.shape[0],))


def _private_successor(first: Any, readers: dict[str, list[Any]], outputs: set[str],
                       constants: dict[str, np.ndarray]) -> Any:
    """The plain Gemm that alone reads the output of the plain Gemm ``first``, as its x,
    when that output is not a graph output; else None."""
    if not _plain_gemm(first, constants) or first.output[0] in outputs:
        return None
    after = readers.get(first.output[0], [])
    if len(after) != 1 or not _plain_gemm(after[0], constants) or after[0].input[0] != first.output[0]:
        return None
    return after[0]


def _fold_gemms(model: Any, constants: dict[str, np.ndarray]) -> int:
    """Gemm → Gemm with a private intermediate → one Gemm, repeated until none is left (a
    chain of three folds twice). Returns the number of folds."""
    from onnx import helper, numpy_helper

    graph = model.graph
    outputs = {o.name for o in graph.output}
    done = 0
    while True:
        readers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node)
        pairs = ((first, _private_successor(first, readers, outputs, constants)) for first in graph.node)
        first, second = next(((a, b) for a, b in pairs if b is not None), (None, None))
        if first is None:
            return done
        (w1, b1), (w2, b2) = _affine(first, constants), _affine(second, constants)
        dtype = constants[second.input[1]].dtype
        # named after the output (unique in a graph; node names may be empty or repeated)
        weight_name, bias_name = f"{second.output[0]}__folded_weight", f"{second.output[0]}__folded_bias"
        constants[weight_name] = (w2 @ w1).astype(dtype)
        constants[bias_name] = (w2 @ b1 + b2).astype(dtype)
        graph.initializer.extend(
            [numpy_helper.from_array(constants[weight_name], weight_name),
             numpy_helper.from_array(constants[bias_name], bias_name)]
        )
        inputs = [first.input[0], weight_name, bias_name]
        name = f"{second.name}__folded"
        folded = helper.make_node("Gemm", inputs, list(second.output), name=name, transB=1)
        nodes = [folded if node is second else node for node in graph.node if node is not first]
        del graph.node[:]
        graph.node.extend(nodes)
        done += 1


def _drop_unused_initializers(model: Any) -> None:
    used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def simplify_for_inference(model: Any) -> tuple[Any, dict[str, int]]:
    """A copy of the ONNX ``model`` (a ``ModelProto``) with its spatial means written as
    global average pooling and its consecutive affine layers folded (see the module
    docstring), and the count of each rewrite: ``{"global_pool": n, "folded_gemm": m}``."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    constants = {init.name: numpy_helper.to_array(init) for init in out.graph.initializer}
    for node in out.graph.node:  # Constant nodes (older exporters) count as constants too
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    inferred = onnx.shape_inference.infer_shapes(out)
    ranks = {
        value.name: len(value.type.tensor_type.shape.dim)
        for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
        if value.type.tensor_type.HasField("shape")
    }
    counts = {"global_pool": _global_pool(out, constants, ranks), "folded_gemm": _fold_gemms(out, constants)}
    _drop_unused_initializers(out)
    return out, counts
