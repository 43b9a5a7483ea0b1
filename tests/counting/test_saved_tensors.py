"""Activations measured on the graph: against Korthikanti et al. 2022's per-layer formula, against an independent
count of the tensors autograd saves (walking the backward graph on the CPU), and what each rule does."""

import importlib.util

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from flopcalc.counting.saved_tensors import find_blocks, measure_activations
from tests.conftest import EXAMPLES


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpt, llama = example("gpt"), example("llama")
B, S, H, A, L = 2, 32, 64, 4, 2  # examples/gpt.py's tiny preset: batch, sequence, hidden, heads, layers


def on_meta(build, batch=B, seq=S):
    with torch.device("meta"):
        return build(), torch.zeros(batch, seq, dtype=torch.long)


def saved_storage_bytes(output: torch.Tensor, model: nn.Module) -> int:
    """An independent count: walk the backward graph from the output and add up the storages its nodes hold in
    their `_saved_*` attributes (real CPU tensors, told apart by address), parameters and buffers left out."""
    state = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen, total, nodes, visited = set(), 0, [output.grad_fn], set()
    while nodes:
        node = nodes.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        for name in dir(node):
            if not name.startswith("_saved_"):
                continue
            value = getattr(node, name)
            for tensor in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(tensor, torch.Tensor):
                    address = tensor.untyped_storage().data_ptr()
                    if address not in state and address not in seen:
                        seen.add(address)
                        total += tensor.untyped_storage().nbytes()
        nodes.extend(next_node for next_node, _ in node.next_functions)
    return total


def test_a_gpt_layer_keeps_what_korthikanti_counts():
    """Korthikanti et al. 2022, Sec. 4.1, 16-bit activations and 1-byte dropout masks, per layer:
    attention 11sbh + 5as^2b (QKV input 2sbh, Q and K 4sbh, softmax output 2as^2b, its dropout mask as^2b and
    output 2as^2b, V 2sbh, output projection input 2sbh, dropout mask sbh), MLP 19sbh (input 2sbh, GELU input
    8sbh, second linear's input 8sbh, dropout mask sbh), two LayerNorm inputs 4sbh: sbh(34 + 5as/h) in all.
    The graph also keeps LayerNorm's mean and 1/std, 2 x 2 x sb elements (0.4% here)."""
    model, tokens = on_meta(gpt.build)
    profile = measure_activations(model, tokens)
    assert profile.layers == L and profile.block_names == ("blocks.0", "blocks.1")
    sbh = S * B * H
    per_layer = profile.blocks_total.bytes_at(2) / L
    assert per_layer == pytest.approx(sbh * (34 + 5 * A * S / H), rel=0.01)
    # the parts, exactly: split over tensor-parallel ranks 24sbh, scores 5as^2b, the stream 10sbh + the statistics
    assert profile.block_split.bytes_at(2) / L == 24 * sbh
    assert profile.block_scores.bytes_at(2) / L == 5 * A * S * S * B
    assert profile.block_replicated.bytes_at(2) / L == 10 * sbh + 2 * 2 * S * B * 2
    assert profile.block_input.bytes_at(2) / L == 2 * sbh  # what full recomputation keeps
    assert (profile.hidden, profile.seq_len, profile.heads) == (H, S, A)


@pytest.mark.parametrize(
    "name, build, vocab, seq",
    [
        ("gpt without dropout", lambda: gpt.build(dropout=0.0), 256, 32),
        ("llama (scaled_dot_product_attention)", llama.build, 512, 16),
    ],
)
def test_the_graph_measure_agrees_with_an_independent_count_on_cpu(name, build, vocab, seq):
    torch.manual_seed(0)
    model = build()
    tokens = torch.randint(0, vocab, (2, seq))
    independent = saved_storage_bytes(model(tokens), model)
    meta_model, meta_tokens = on_meta(build, 2, seq)
    measured = measure_activations(meta_model, meta_tokens).total.bytes_at(4)  # fp32, as the CPU ran it
    assert measured == pytest.approx(independent, rel=0.02)
    assert measure_activations(model, tokens).total.bytes_at(4) == pytest.approx(independent, rel=0.02)


def test_attention_is_kept_as_a_fused_kernel_keeps_it_on_meta():
    """On meta SDPA runs the math decomposition (it would save the b x h x s x s matrix); counted as a fused kernel:
    q, k, v, the output, and a float32 log-sum-exp per query row."""

    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(16, 48)

        def forward(self, x):
            q, k, v = (t.unflatten(-1, (2, 8)).transpose(1, 2).contiguous() for t in self.qkv(x).chunk(3, -1))
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    with torch.device("meta"):
        model, x = Attend(), torch.zeros(3, 10, 16)
    profile = measure_activations(model, x)
    elements = 3 * 10 * 16
    # x (saved by the linear), q, k, v, output: 5 x elements floats; log-sum-exp 3 x 2 heads x 10 rows x 4 bytes
    assert profile.total.floating_elements == 5 * elements
    assert profile.total.fixed_bytes == 3 * 2 * 10 * 4


def test_each_storage_once_parameters_and_buffers_left_out():
    class Square(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(8, 8)
            self.register_buffer("scale", torch.ones(8))

        def forward(self, x):
            y = self.linear(x)  # saves x (and the weight, a parameter)
            # y * y saves y twice (both operands): one storage; x the buffer saves only the buffer (no grad needed
            # for it), which is model state
            return (y * y) * self.scale

    model = Square()
    profile = measure_activations(model, torch.randn(4, 8))
    assert profile.total.floating_elements == 2 * 32 and profile.total.fixed_bytes == 0  # x and y


def test_dropout_keeps_a_one_byte_mask_as_cuda_does():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    profile = measure_activations(model, torch.randn(4, 8))
    assert profile.total.floating_elements == 32  # the linear's input
    assert profile.total.fixed_bytes == 32  # the mask, a byte per element (the CPU saves a float mask)


def test_blocks_stages_and_tied_weights():
    """Parameters before the first block go to the first pipeline stage, after the last block to the last; GPT's
    head is the token embedding (tied), held at both ends."""
    model, tokens = on_meta(gpt.build)
    profile = measure_activations(model, tokens)
    embeddings = 256 * H + S * H
    assert profile.params_before == embeddings
    assert profile.params_after == 2 * H + 256 * H  # final LayerNorm and the tied head
    assert profile.block_params == L * sum(p.numel() for p in model.blocks[0].parameters())
    assert profile.params == embeddings + 2 * H + profile.block_params
    assert profile.before_blocks.fixed_bytes > 0  # the token ids and the embedding dropout's mask
    assert profile.after_blocks.floating_elements > 0  # the final LayerNorm and the head's input


def test_train_and_eval_modes_are_restored():
    model, tokens = on_meta(gpt.build)
    model.eval()
    measure_activations(model, tokens)
    assert not any(module.training for module in model.modules())


def test_no_repeated_blocks_means_everything_is_outside():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    assert find_blocks(model) == (None, [], [])
    profile = measure_activations(model, torch.randn(2, 8))
    assert profile.layers == 0 and profile.before_blocks == profile.total


def test_a_config_supplies_heads_the_graph_cannot_show():
    """llama.py repeats K/V heads before attention, so the graph sees 4 K/V heads; a `config` says 2."""
    model, tokens = on_meta(llama.build, 1, 16)
    assert measure_activations(model, tokens).kv_heads == 4
    model.config = type("Config", (), {"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512})()
    profile = measure_activations(model, tokens)
    assert (profile.heads, profile.kv_heads, profile.vocab) == (4, 2, 512)


def test_a_torchscript_model_keeps_what_its_eager_model_keeps(tmp_path):
    """Regression: counted first (its profiling executor then swaps in an optimised graph), a TorchScript module
    was measured running other kernels, which save other tensors; it is measured as written."""
    import warnings

    from flopcalc.api import count_with_activations
    from flopcalc.spec import ModelSpec

    model, tokens = gpt.build(dropout=0.0), torch.zeros(2, 32, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warning about the 1/sqrt(head) constant
        torch.jit.trace(model, (tokens,)).save(str(tmp_path / "gpt.pt"))
    _, scripted = count_with_activations(ModelSpec(str(tmp_path / "gpt.pt"), inputs=("2x32:int64",)))
    eager = measure_activations(model, tokens)
    assert scripted.total.bytes_at(2) == pytest.approx(eager.total.bytes_at(2), abs=8)


def test_blocks_of_one_class_may_differ_in_size_and_leaves_are_not_blocks():
    """T5's first block alone holds the relative position bias; an MLP's Linears are layers, not blocks."""

    class Block(nn.Module):
        def __init__(self, extra: bool):
            super().__init__()
            self.linear = nn.Linear(8, 8)
            self.bias = nn.Embedding(4, 2) if extra else None

        def forward(self, x):
            return x + self.linear(x)

    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Sequential(Block(True), Block(False), Block(False)))
    container, blocks, _ = find_blocks(model)
    assert container == "2" and len(blocks) == 3
    profile = measure_activations(model, torch.randn(2, 8))
    assert profile.layers == 3 and profile.block_params == 3 * 72 + 8
    assert find_blocks(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))) == (None, [], [])


def test_a_mixture_of_experts_is_measured_on_meta(tmp_path):
    """The grouped GEMMs of a mixture of experts check for bf16 inputs on meta; the measure runs on meta anyway."""
    pytest.importorskip("transformers")
    import json

    from flopcalc.api import count_with_activations
    from flopcalc.spec import ModelSpec

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "mixtral",
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "num_local_experts": 4,
                "num_experts_per_tok": 2,
                "vocab_size": 256,
                "max_position_embeddings": 64,
            }
        )
    )
    report, profile = count_with_activations(ModelSpec(str(config)))
    assert report.device == "meta" and not any("could not run on the meta device" in note for note in report.notes)
    assert profile.layers == 2 and (profile.heads, profile.kv_heads) == (4, 2)
