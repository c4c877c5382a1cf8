"""The bundled int8 ONNX cross-encoder back as fp32 PyTorch weights, so it can be fine-tuned.

ONNX Runtime's dynamic quantization keeps every ``Linear`` as ``MatMulInteger`` over an int8
table with a scale and a zero point, and the embedding tables as ``Gather`` + ``DequantizeLinear``.
``(table - zero_point) * scale`` recovers each weight to within the quantization step; biases and
LayerNorms are stored in fp32 and copied as they are. Each ``MatMulInteger``'s output is added to
a bias whose initializer name is the PyTorch parameter's (``...query.bias``), which names the
weight. The result is a ``BertForSequenceClassification`` folder that ``CrossEncoder`` (and so
``rerank-kit train`` and every ``cross-encoder:`` / ``onnx:`` spec) loads.

``dequantized_graph`` applies the same rule inside the ONNX graph: the fp32 graph OpenVINO runs
for a dynamic int8 graph (see ``batch_rule``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: BertConfig of cross-encoder/ms-marco-MiniLM-L-12-v2 (checked against the graph's tables).
MINILM_L12_H384: dict[str, Any] = {
    "architectures": ["BertForSequenceClassification"],
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "id2label": {"0": "LABEL_0"},
    "label2id": {"LABEL_0": 0},
}


def int8_graph_weights(onnx_path: str | Path) -> dict[str, Any]:
    """PyTorch state-dict entries (fp32 numpy arrays) recovered from a quantized BERT graph.

    Args:
        onnx_path: A ``model.onnx`` quantized by ONNX Runtime's ``quantize_dynamic``.

    Returns:
        Parameter name -> array, shaped like the PyTorch parameter.

    Raises:
        ValueError: A ``MatMulInteger`` whose output does not reach a named bias.
    """
    import numpy as np
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    values, producer, consumers = _graph_index(graph)

    def first_consumer(name: str, op: str) -> Any:
        for node in consumers.get(name, []):
            if node.op_type == op:
                return node
        raise ValueError(f"{onnx_path}: no {op} reads {name}")

    out: dict[str, Any] = {
        name: array.astype(np.float32)
        for name, array in values.items()
        if name.endswith((".bias", "LayerNorm.weight")) and array.dtype == np.float32
    }
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            table = values[node.input[1]].astype(np.float32)
            zero = values[node.input[3]].astype(np.float32) if len(node.input) > 3 else 0.0
            cast = first_consumer(node.output[0], "Cast")
            mul = first_consumer(cast.output[0], "Mul")
            scales = producer[next(i for i in mul.input if i != cast.output[0])]
            scale = next(values[i] for i in scales.input if i in values).astype(np.float32)
            add = first_consumer(mul.output[0], "Add")
            bias = next((i for i in add.input if i.endswith(".bias") and i in values), None)
            if bias is None:
                raise ValueError(f"{onnx_path}: {node.name} does not reach a named bias")
            # MatMul computes x @ W with W [in, out]; torch's Linear stores [out, in]
            out[bias[: -len("bias")] + "weight"] = ((table - zero) * scale).T.copy()
        elif node.op_type == "DequantizeLinear" and node.input[1].endswith("_scale"):
            gather = producer.get(node.input[0])
            if gather is None or gather.op_type != "Gather":
                continue
            table = values[gather.input[0]].astype(np.float32)
            zero = values[node.input[2]].astype(np.float32) if len(node.input) > 2 else 0.0
            scale = values[node.input[1]].astype(np.float32)
            out[node.input[1][: -len("_scale")]] = (table - zero) * scale
    return out


def export_bundled_torch(src: Path, out: Path) -> Path:
    """Write ``src``'s int8 graph as a PyTorch ``BertForSequenceClassification`` folder in ``out``."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    weights = int8_graph_weights(src / "model.onnx")
    config = BertConfig(**MINILM_L12_H384)
    model = BertForSequenceClassification(config)
    state = model.state_dict()
    missing = [k for k in state if k not in weights and not k.endswith("position_ids")]
    if missing:
        raise ValueError(f"{src}: the graph holds no weights for {missing[:5]}")
    for name, array in weights.items():
        if name not in state:
            continue
        if tuple(state[name].shape) != array.shape:
            raise ValueError(f"{name}: graph shape {array.shape}, model {tuple(state[name].shape)}")
        state[name] = torch.from_numpy(np.ascontiguousarray(array))
    model.load_state_dict(state)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for f in src.iterdir():
        if f.is_file() and f.suffix not in (".onnx",) and f.name != "config.json":
            shutil.copy(f, out / f.name)
    tok_config = out / "tokenizer_config.json"
    settings = json.loads(tok_config.read_text()) if tok_config.is_file() else {}
    settings["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    tok_config.write_text(json.dumps(settings, indent=2))
    logger.info("wrote %s: %s dequantized to fp32", out, src)
    return out


def dequantized_graph(src: str | Path, dst: str | Path) -> Path:
    """Write ``src``'s dynamic int8 graph as an fp32 ONNX graph (for OpenVINO; needs ``onnx``).

    Each ``DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul`` chain becomes one fp32
    ``MatMul`` over ``(table - zero_point) * scale``, and each constant ``DequantizeLinear``
    table its fp32 table (the rule ``int8_graph_weights`` uses for torch). An fp32 graph has
    no batch-wide activation scale, so a pair's score does not depend on its batch.

    Raises:
        ValueError: A ``MatMulInteger`` whose input or scale is not such a chain.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    values, producer, consumers = _graph_index(graph)
    new_inits: list[Any] = []
    drop: set[int] = set()
    add: list[Any] = []
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            dql = producer.get(node.input[0])
            users = consumers.get(node.output[0], [])
            if dql is None or dql.op_type != "DynamicQuantizeLinear" or len(users) != 1:
                raise ValueError(f"{src}: {node.name} is not a dynamic int8 MatMul")
            table = values[node.input[1]].astype(np.float32)
            zero = values[node.input[3]].astype(np.float32) if len(node.input) > 3 else 0.0
            cast = users[0]
            mul = consumers[cast.output[0]][0]
            scales = producer[next(i for i in mul.input if i != cast.output[0])]
            scale = next(values[i] for i in scales.input if i in values).astype(np.float32)
            name = f"{node.input[1]}/fp32"
            new_inits.append(
                numpy_helper.from_array(((table - zero) * scale).astype(np.float32), name)
            )
            add.append(onnx.helper.make_node("MatMul", [dql.input[0], name], [mul.output[0]]))
            drop.update(id(n) for n in (node, cast, mul, scales))
        elif node.op_type == "DequantizeLinear" and all(i in values for i in node.input if i):
            table = values[node.input[0]].astype(np.float32)
            zero = values[node.input[2]].astype(np.float32) if len(node.input) > 2 else 0.0
            fp32 = ((table - zero) * values[node.input[1]].astype(np.float32)).astype(np.float32)
            new_inits.append(numpy_helper.from_array(fp32, node.output[0]))
            drop.add(id(node))
    nodes = [n for n in graph.node if id(n) not in drop] + add
    outputs = {o.name for o in graph.output}
    while True:  # drop what only fed the replaced nodes (the quantizers)
        used = {i for n in nodes for i in n.input} | outputs
        keep = [n for n in nodes if any(o in used for o in n.output)]
        if len(keep) == len(nodes):
            break
        nodes = keep
    used = {i for n in nodes for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(kept + [i for i in new_inits if i.name in used])
    ordered: list[Any] = []
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = nodes
    while pending:  # topological order (the new MatMuls were appended at the end)
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"{src}: could not order the dequantized graph")
        pending = rest
    graph.ClearField("node")
    graph.node.extend(ordered)
    graph.ClearField("value_info")
    out = Path(dst)
    onnx.save(model, str(out))
    return out


def _graph_index(graph: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
    """``(constant values by name, producing node by output, consuming nodes by input)``."""
    from onnx import numpy_helper

    values: dict[str, Any] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return values, producer, consumers
