"""ONNX graph edits applied after export: an untied LM head that computes the last position only.

optimum's export projects every position through the LM head, so a 2,000-token Gemma prefill would
allocate 2 GB of logits and spend most of its time in the 262k-wide head. Generation needs only the last
position; slicing the hidden state before the head makes prefill cost what a serving engine's does.
"""

from __future__ import annotations

from pathlib import Path

from tts_sim.errors import ConfigError

# ops that act position-wise, so logits[:, -1] can be taken before them (Gemma's soft-capping, casts)
_POSITIONWISE = {"Cast", "Identity", "Div", "Mul", "Tanh", "Add", "Sub"}
_EXTERNAL_DATA_ABOVE = 1_800_000_000  # bytes; protobuf cannot serialise 2 GB in one message


def save_onnx(model, path: Path) -> None:  # model: onnx.ModelProto
    """Save a model, moving its weights to ``<name>_data`` when it is too big for one protobuf."""
    import onnx

    if model.ByteSize() > _EXTERNAL_DATA_ABOVE:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + "_data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def _untie_head(graph, head, producer: dict, initializers: dict) -> bool:
    """Give a tied LM head (``MatMul(x, Transpose(embedding))``) its own transposed weight initializer, so that
    the quantisers, which only touch MatMuls with constant weights, quantise it too."""
    from onnx import numpy_helper

    if head.input[1] in initializers:
        return True
    transpose = producer.get(head.input[1])
    if transpose is None or transpose.op_type != "Transpose" or transpose.input[0] not in initializers:
        return False
    weight = numpy_helper.to_array(initializers[transpose.input[0]])
    perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
    if weight.ndim != 2 or perm not in (None, [1, 0]):
        return False
    name = transpose.input[0] + "/tts_sim_lm_head"
    graph.initializer.append(numpy_helper.from_array(weight.T.copy(), name))
    head.input[1] = name
    if not any(transpose.output[0] in node.input for node in graph.node if node is not head):
        graph.node.remove(transpose)
    return True


def keep_last_logits(path: Path) -> None:
    """Rewrite the model at ``path`` so that output ``logits`` has sequence length 1 (the last position) and the
    LM head has its own constant weight."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    name = "logits"
    head = None
    while name in producer:
        node = producer[name]
        if node.op_type == "MatMul":
            head = node
            break
        if node.op_type not in _POSITIONWISE:
            break
        name = node.input[0]
    if head is None or not _untie_head(graph, head, producer, initializers):
        raise ConfigError(f"{path}: cannot find the LM head MatMul behind 'logits'")
    hidden = head.input[0]
    consts = [("starts", -1), ("ends", 2**63 - 1), ("axes", 1)]
    for suffix, value in consts:
        graph.initializer.append(helper.make_tensor(f"tts_sim_last_{suffix}", TensorProto.INT64, [1], [value]))
    sliced = hidden + "/tts_sim_last_position"
    slice_node = helper.make_node("Slice", [hidden] + [f"tts_sim_last_{s}" for s, _ in consts], [sliced],
                                  name="tts_sim_last_position_slice")
    head.input[0] = sliced
    index = list(graph.node).index(head)
    graph.node.insert(index, slice_node)
    for output in graph.output:
        if output.name == "logits":
            dim = output.type.tensor_type.shape.dim[1]
            dim.Clear()
            dim.dim_value = 1
    for stale in path.parent.glob(path.name + "_data"):
        stale.unlink()  # rewritten below (or inlined when small enough)
    save_onnx(model, path)
