"""BERT self-attention cores of a per-token int8 graph as ``com.microsoft.MultiHeadAttention``.

``fuse_bert_attention`` is the optional second step after ``per_token.per_token_int8`` on graphs
exported from torch without ONNX Runtime's fusion (the bundled model, FlashRank folders): each
attention core (Reshape/Transpose/scale/MatMul/mask Add/Softmax/MatMul/Transpose/Reshape) becomes
one ``MultiHeadAttention`` node with the Q/K/V biases folded in. Each (pair, head) is computed
on its own, so batch independence is kept; it earns back ~10 % on long inputs. When the pattern
is absent it returns 0 and writes nothing.

Example:
    >>> fuse_bert_attention("no-such.onnx", "out.onnx", 12)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from rerank_kit._runtime.per_token import consumers_of

__all__ = ["fuse_bert_attention", "split_attention"]


def _constant(name: str, producers: dict[str, Any], inits: dict[str, Any]) -> Any:
    """The value of a constant tensor (initializer or ``Constant`` node), else ``None``."""
    from onnx import numpy_helper

    if name in inits:
        return numpy_helper.to_array(inits[name])
    node = producers.get(name)
    if node is not None and node.op_type == "Constant" and node.attribute:
        return numpy_helper.to_array(node.attribute[0].t)
    return None


def _heads_of(reshape: Any, producers: dict[str, Any], inits: dict[str, Any]) -> int | None:
    """Heads of a ``[batch, seq, heads, head_size]`` Reshape: its shape's third entry."""
    shape = _constant(reshape.input[1], producers, inits)
    if shape is not None:
        return int(shape.reshape(-1)[2]) if shape.size == 4 and shape.reshape(-1)[2] > 0 else None
    concat = producers.get(reshape.input[1])
    if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
        return None
    heads = _constant(concat.input[2], producers, inits)
    return int(heads.reshape(-1)[0]) if heads is not None and heads.size == 1 else None


def fuse_bert_attention(
    src_onnx_path: str | Path, dst_onnx_path: str | Path, num_heads: int | None = None
) -> int:
    """Replace each unfused BERT self-attention core by ``com.microsoft.MultiHeadAttention``.

    Matches, from every ``Softmax``: ``MatMul(Q', K')`` with ``Q' = [Mul(.)] Transpose(Reshape(q))``
    and ``K' = [Mul(.)] Transpose(Reshape(k), perm 0,2,3,1)``, an ``Add`` of the mask, the
    ``Softmax``, ``MatMul(., Transpose(Reshape(v)))``, ``Transpose`` and ``Reshape`` back to
    ``[batch, seq, hidden]`` (the torch export of ``BertSelfAttention``, as in the bundled
    ms-marco-MiniLM-L-12-v2 graph). ``q``, ``k``, ``v`` that are ``Add(bias, projection)`` hand
    their biases to the MHA node (its ``bias`` input), which saves three passes per layer. The
    scale is MHA's default ``1 / sqrt(head_size)`` (what BERT computes) and the key padding mask
    is ``attention_mask`` (masked keys get -10000 before the softmax: weight 0, as before).
    Per-(pair, head) computation: batch independence is kept (checked: 0.0).

    ``num_heads``: the model's attention heads; ``None`` reads them from each block's ``Reshape``
    target shape (a block whose shape is not a constant is left as it is).

    Returns:
        The number of attention blocks replaced (0: the pattern was not found; nothing written).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src_onnx_path))
    g = model.graph
    producers = {out: n for n in g.node for out in n.output}
    consumers = consumers_of(g)
    inits = {i.name: i for i in g.initializer}

    def parent(name: str, op: str) -> Any:
        node = producers.get(name)
        return node if node is not None and node.op_type == op else None

    def skip_mul(name: str) -> str:
        node = producers.get(name)
        return node.input[0] if node is not None and node.op_type == "Mul" else name

    mask = "fuse_bert_attention/mask_int32"
    place: dict[int, Any] = {}
    drop: set[int] = set()
    for sm in [n for n in g.node if n.op_type == "Softmax"]:
        add = parent(sm.input[0], "Add")
        scores = parent(add.input[0], "MatMul") if add is not None else None
        if scores is None:
            continue
        tq = parent(skip_mul(scores.input[0]), "Transpose")
        tk = parent(skip_mul(scores.input[1]), "Transpose")
        if tq is None or tk is None:
            continue
        rq, rk = parent(tq.input[0], "Reshape"), parent(tk.input[0], "Reshape")
        users = consumers.get(sm.output[0], [])
        ctx = users[0] if len(users) == 1 and users[0].op_type == "MatMul" else None
        tv = parent(ctx.input[1], "Transpose") if ctx is not None else None
        rv = parent(tv.input[0], "Reshape") if tv is not None else None
        after = consumers.get(ctx.output[0], []) if ctx is not None else []
        t3 = after[0] if len(after) == 1 and after[0].op_type == "Transpose" else None
        after = consumers.get(t3.output[0], []) if t3 is not None else []
        r3 = after[0] if len(after) == 1 and after[0].op_type == "Reshape" else None
        if rq is None or rk is None or rv is None or r3 is None or ctx is None or t3 is None:
            continue
        chain = [add, scores, tq, tk, rq, rk, sm, ctx, tv, rv, t3, r3]
        for name in (scores.input[0], scores.input[1]):
            node = producers.get(name)
            if node is not None and node.op_type == "Mul":
                chain.append(node)
        q, k, v = rq.input[0], rk.input[0], rv.input[0]
        bias_name = ""
        adds: list[Any] = [producers.get(t) for t in (q, k, v)]
        if all(
            a is not None
            and a.op_type == "Add"
            and len(consumers.get(a.output[0], [])) == 1
            and any(i in inits for i in a.input)
            for a in adds
        ):
            parts, projections = [], []
            for a in adds:
                b = next(i for i in a.input if i in inits)
                parts.append(numpy_helper.to_array(inits[b]).astype(np.float32).reshape(-1))
                projections.append(next(i for i in a.input if i != b))
            bias_name = f"{sm.name}/qkv_bias"
            g.initializer.append(numpy_helper.from_array(np.concatenate(parts), bias_name))
            q, k, v = projections
            chain += adds
        heads = num_heads if num_heads is not None else _heads_of(rq, producers, inits)
        if heads is None:
            continue
        place[id(r3)] = helper.make_node(
            "MultiHeadAttention",
            [q, k, v, bias_name, mask],
            [r3.output[0]],
            name=f"{sm.name}/MultiHeadAttention",
            domain="com.microsoft",
            num_heads=heads,
        )
        drop.update(id(n) for n in chain if id(n) != id(r3))
    if not place:
        return 0
    nodes = [
        helper.make_node(
            "Cast",
            ["attention_mask"],
            [mask],
            to=TensorProto.INT32,
            name="fuse_bert_attention/mask_cast",
        )
    ]
    for n in g.node:
        if id(n) in place:
            nodes.append(place[id(n)])
        elif id(n) not in drop:
            nodes.append(n)
    outputs = {o.name for o in g.output}
    while True:  # drop what only fed the replaced nodes (shape plumbing, the expanded mask)
        used = {i for n in nodes for i in n.input} | outputs
        keep = [n for n in nodes if any(o in used for o in n.output)]
        if len(keep) == len(nodes):
            break
        nodes = keep
    g.ClearField("node")
    g.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    g.ClearField("initializer")
    g.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(model)
    dst = Path(dst_onnx_path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return len(place)


def split_attention(src_onnx_path: str | Path, dst_onnx_path: str | Path) -> int:
    """Replace each fused ``com.microsoft.Attention`` by three ``MatMul`` + ``MultiHeadAttention``.

    ONNX Runtime's offline BERT optimizer fuses a layer's Q/K/V projections into ``Attention``,
    which ``quantize_dynamic`` turns into ``QAttention``: a batch-wide activation scale inside a
    kernel no rewrite can reach. Split first, the projections become plain ``MatMul`` nodes
    (quantized like every other, then rewritten per token) and the attention core a
    ``MultiHeadAttention`` with the same bias and key padding mask.

    Only self-attention without past state, extra bias or ``unidirectional`` is split; others
    are left as they are. Returns the number split (0: nothing written).
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src_onnx_path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes: list[Any] = []
    count = 0
    for node in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        inputs = list(node.input)
        if (
            node.op_type != "Attention"
            or node.domain != "com.microsoft"
            or attrs.get("unidirectional", 0)
            or any(inputs[4:])
            or len(inputs) < 3
            or inputs[1] not in inits
            or inputs[2] not in inits
            or set(attrs) - {"num_heads", "qkv_hidden_sizes", "scale", "mask_filter_value"}
        ):
            nodes.append(node)
            continue
        weights = numpy_helper.to_array(inits[inputs[1]]).astype(np.float32)
        sizes = [int(s) for s in attrs.get("qkv_hidden_sizes", [weights.shape[1] // 3] * 3)]
        if sizes[0] != sizes[1] or sum(sizes) != weights.shape[1]:
            nodes.append(node)
            continue
        bounds = np.cumsum([0, *sizes])
        qkv = []
        for part, (lo, hi) in zip("qkv", itertools.pairwise(bounds), strict=True):
            name = f"{node.name or inputs[1]}/{part}_weight"
            g.initializer.append(numpy_helper.from_array(weights[:, lo:hi].copy(), name))
            out = f"{node.name or inputs[1]}/{part}"
            nodes.append(helper.make_node("MatMul", [inputs[0], name], [out], name=f"{out}/MatMul"))
            qkv.append(out)
        extra = {k: attrs[k] for k in ("scale", "mask_filter_value") if k in attrs}
        mask = inputs[3] if len(inputs) > 3 else ""
        nodes.append(
            helper.make_node(
                "MultiHeadAttention",
                [*qkv, inputs[2], mask],
                [node.output[0]],
                name=f"{node.name}/MultiHeadAttention",
                domain="com.microsoft",
                num_heads=int(attrs["num_heads"]),
                **extra,
            )
        )
        count += 1
    if not count:
        return 0
    g.ClearField("node")
    g.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    g.ClearField("initializer")
    g.initializer.extend(kept)
    onnx.checker.check_model(model)
    dst = Path(dst_onnx_path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return count
