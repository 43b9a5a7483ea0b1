"""Serving one model on several GPUs: tensor parallelism splits each weight matrix and the attention heads over
T GPUs (Megatron's column/row split), pipeline parallelism puts L/P layers on each of P stages, replicas copy the
whole. A decode step's all-reduces carry one token per sequence, so each is priced with the link's latency per
ring step as well as its bandwidth: at small batch the latency is most of it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..device import load_profiles, resolve_device
from ..errors import UsageError
from ..predict.comm import ring_s
from .bounds import LayerBound, PassBound
from .quantisation import parameter_bytes

GB = 1e9
DEFAULT_GPUS_PER_NODE = 8
# Megatron-LM: each transformer block all-reduces its hidden stream twice in a forward (after the attention's
# output projection and after the MLP's down projection).
ALL_REDUCES_PER_LAYER = 2
# A ring step's latency where the shipped device profiles have none for the GPU: the A100 and H100 profiles'
# figures (Calculon's system descriptions), as a floor.
ASSUMED_LATENCY_S = {"intra-node": 1e-6, "inter-node": 2e-6}
ASSUMED_LATENCY_SOURCE = "assumed: the shipped A100/H100 profiles' latency per ring step (Calculon)"
NOT_MODELLED = (
    "several GPUs: not modelled are pipeline stages serving several batches at once (each step "
    "runs the stages one after another), overlap of all-reduces with compute, uneven stages (the "
    "embedding and head are spread with the layers), and replicated norms' and residuals' extra work"
)


@dataclass(frozen=True)
class ServingLayout:
    """How many GPUs serve the model: T-way tensor parallel, P pipeline stages, n replicas of those T x P."""

    tp: int = 1
    pp: int = 1
    replicas: int = 1
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE

    def __post_init__(self) -> None:
        for flag, value in (
            ("--tp", self.tp),
            ("--pp", self.pp),
            ("--replicas", self.replicas),
            ("--gpus-per-node", self.gpus_per_node),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 20:
                raise UsageError(f"{flag} {value!r} must be a whole number from 1 to {1 << 20:,}")
        if self.tp > self.gpus_per_node or self.gpus_per_node % self.tp:
            raise UsageError(
                f"--tp {self.tp} must divide the {self.gpus_per_node} GPUs of a node: tensor "
                "parallelism stays inside a node",
                "give --tp 1, 2, 4 or 8 (or set --gpus-per-node)",
            )

    @property
    def several(self) -> bool:
        return self.tp * self.pp * self.replicas > 1

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def node_crossings(self) -> int:
        """Pipeline hops that leave a node: stage s sits on GPUs s*T .. s*T+T-1, nodes filled in order."""
        return sum(1 for stage in range(1, self.pp) if (stage * self.tp) % self.gpus_per_node == 0)


@dataclass(frozen=True)
class Link:
    """One direction of a GPU's link at its peak, and a latency per ring step."""

    scope: str  # "intra-node" or "inter-node"
    bandwidth: float  # bytes/s
    latency_s: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "gbps": self.bandwidth / GB,
            "latency_us": self.latency_s * 1e6,
            "source": self.source,
        }


@dataclass(frozen=True)
class ModelShape:
    """What the split needs from the model's config."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int


def model_shape(model: Any, source: str) -> ModelShape:
    """hidden_size, num_hidden_layers, num_attention_heads and num_key_value_heads of a Hugging Face config."""
    config = getattr(model, "config", None)
    values = {
        key: getattr(config, key, None)
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    }
    values["num_key_value_heads"] = values["num_key_value_heads"] or values["num_attention_heads"]
    missing = [key for key, value in values.items() if not isinstance(value, int) or value < 1]
    if missing:
        raise UsageError(
            f"{source}: serving on several GPUs needs the model's {', '.join(missing)} (a Hugging Face config)",
            "give a config.json of a transformers causal LM, or drop --tp/--pp",
        )
    return ModelShape(
        values["hidden_size"], values["num_hidden_layers"], values["num_attention_heads"], values["num_key_value_heads"]
    )


def ring_all_reduce_s(nbytes: float, group: int, link: Link) -> float:
    """A ring all-reduce of `nbytes`: each GPU sends 2(n-1)/n of it, in 2(n-1) steps of one latency each."""
    if nbytes <= 0:
        return 0.0
    return ring_s("all_reduce", nbytes, group, link.bandwidth, link.latency_s)


def send_s(nbytes: float, link: Link) -> float:
    """A point-to-point send of `nbytes`: one latency and the bytes at the link's bandwidth."""
    return ring_s("p2p", nbytes, 1, link.bandwidth, link.latency_s)


@dataclass(frozen=True)
class ParallelServing:
    """A layout applied to a model: how each counted layer splits, and what each pass adds in communication."""

    layout: ServingLayout
    shape: ModelShape
    activation_bytes: float  # bytes per element of the hidden stream
    tp_link: Link | None  # None without tensor parallelism
    intra_link: Link | None  # for pipeline hops inside a node
    inter_link: Link | None  # for pipeline hops across nodes

    @property
    def kv_split(self) -> int:
        """The GPUs a layer's KV heads spread over: T, or the KV heads when fewer (each then held by T/KV GPUs)."""
        return min(self.layout.tp, self.shape.kv_heads)

    @property
    def all_reduces_per_step(self) -> int:
        return 0 if self.layout.tp <= 1 else ALL_REDUCES_PER_LAYER * self.shape.layers

    def message_bytes(self, tokens: int) -> float:
        """The hidden stream of `tokens` tokens (batch x tokens per sequence): one all-reduce's or send's buffer."""
        return tokens * self.shape.hidden * self.activation_bytes

    def all_reduce_s(self, tokens: int) -> float:
        """One all-reduce of the hidden stream of `tokens` tokens over the T GPUs."""
        return (
            0.0 if self.tp_link is None else ring_all_reduce_s(self.message_bytes(tokens), self.layout.tp, self.tp_link)
        )

    def sends_s(self, tokens: int) -> float:
        """The P - 1 pipeline hops of one pass, those leaving a node on the inter-node link."""
        hops, crossings = self.layout.pp - 1, self.layout.node_crossings
        if hops == 0:
            return 0.0
        nbytes = self.message_bytes(tokens)
        inside = 0.0 if hops == crossings else (hops - crossings) * send_s(nbytes, self._link(self.intra_link))
        across = 0.0 if crossings == 0 else crossings * send_s(nbytes, self._link(self.inter_link))
        return inside + across

    def _link(self, link: Link | None) -> Link:
        assert link is not None  # resolved for every hop the layout has
        return link

    def per_gpu(self, counted: PassBound, tokens: int, param_shapes: Mapping[str, Sequence[int]]) -> PassBound:
        """The pass as the GPUs of one replica run it, stage after stage: each split layer at 1/T (its KV cache
        at 1/kv_split), the rest whole, and the pass's all-reduces and pipeline sends as two rows of their own."""
        split = _split_layers(counted, param_shapes)
        layers = [self._split(layer) if layer.name in split else layer for layer in counted.layers]
        if self.layout.tp > 1:
            layers.append(
                communication_row(
                    f"tensor-parallel all-reduces ({ALL_REDUCES_PER_LAYER} x {self.shape.layers} layers)",
                    "AllReduce",
                    self.all_reduces_per_step * self.all_reduce_s(tokens),
                )
            )
        if self.layout.pp > 1:
            hops = self.layout.pp - 1
            layers.append(
                communication_row(f"pipeline sends ({hops} hop{'s' if hops > 1 else ''})", "Send", self.sends_s(tokens))
            )
        return PassBound(tuple(layers))

    def _split(self, layer: LayerBound) -> LayerBound:
        tp = self.layout.tp
        per_byte = layer.memory_s / layer.bytes if layer.bytes else 0.0
        shared = replace(
            layer,
            flops=layer.flops / tp,
            weight_bytes=layer.weight_bytes / tp,
            activation_bytes=layer.activation_bytes / tp,
            kv_cache_bytes=layer.kv_cache_bytes / self.kv_split,
        )
        return replace(shared, compute_s=layer.compute_s / tp, memory_s=shared.bytes * per_byte)

    def weights_per_gpu(self, param_shapes: Mapping[str, Sequence[int]], dtype: str, vector_dtype: str) -> float:
        """Weight matrices at 1/T and vectors (norms, biases) whole, over P even stages."""
        total = 0.0
        for shape in param_shapes.values():
            nbytes = parameter_bytes(shape, dtype, vector_dtype)
            total += nbytes / self.layout.tp if len(shape) >= 2 else nbytes
        return total / self.layout.pp

    def kv_per_gpu(self, kv_bytes: float) -> float:
        """A cache of `kv_bytes` (every layer's) as one GPU holds it: its stage's layers, its share of the heads."""
        return kv_bytes / self.kv_split / self.layout.pp

    def to_dict(
        self,
        weights_per_gpu: float,
        kv_per_token_per_gpu: float,
        batch: int,
        prompt: int,
        tokens_per_s_per_replica: Sequence[tuple[int, float]],
    ) -> dict[str, Any]:
        layout = self.layout
        return {
            "tp": layout.tp,
            "pp": layout.pp,
            "replicas": layout.replicas,
            "gpus_per_replica": layout.gpus_per_replica,
            "gpus": layout.gpus_per_replica * layout.replicas,
            "gpus_per_node": layout.gpus_per_node,
            "weights_bytes_per_gpu": math.ceil(weights_per_gpu),
            "kv_heads_per_gpu": self.shape.kv_heads / self.kv_split,
            "kv_cache_bytes_per_token_per_gpu": kv_per_token_per_gpu,
            "all_reduces_per_step": self.all_reduces_per_step,
            "all_reduce_bytes_decode": self.message_bytes(batch) if layout.tp > 1 else 0,
            "all_reduce_s_decode": self.all_reduce_s(batch),
            "all_reduce_bytes_prefill": self.message_bytes(batch * prompt) if layout.tp > 1 else 0,
            "all_reduce_s_prefill": self.all_reduce_s(batch * prompt),
            "pipeline_sends_per_step": layout.pp - 1,
            "pipeline_node_crossings": layout.node_crossings,
            "pipeline_send_s_decode": self.sends_s(batch),
            "tensor_parallel_link": None if self.tp_link is None else self.tp_link.to_dict(),
            "pipeline_links": [link.to_dict() for link in self._pipeline_links()],
            "tokens_per_s_all_replicas": [
                {"batch_size": size, "tokens_per_s": rate * layout.replicas} for size, rate in tokens_per_s_per_replica
            ],
        }

    def _pipeline_links(self) -> list[Link]:
        hops, crossings = self.layout.pp - 1, self.layout.node_crossings
        links = [self.intra_link] if hops > crossings else []
        links += [self.inter_link] if crossings else []
        return [link for link in links if link is not None]


def communication_row(name: str, kind: str, seconds: float) -> LayerBound:
    """A pass's row for time spent on the links: no FLOPs, no bytes of memory traffic, `seconds` as its time."""
    return LayerBound(name, kind, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, seconds)


def _split_layers(counted: PassBound, param_shapes: Mapping[str, Sequence[int]]) -> set[str]:
    """Layers that tensor parallelism splits: those with a weight matrix (or weights not their own by name: a
    tied head) and those that read a KV cache; a layer whose only parameters are vectors (a norm) runs whole."""
    owners = {name.rpartition(".")[0]: len(shape) for name, shape in param_shapes.items()}
    matrix_owners = {name.rpartition(".")[0] for name, shape in param_shapes.items() if len(shape) >= 2}
    return {
        layer.name
        for layer in counted.layers
        if layer.name in matrix_owners
        or layer.kv_cache_bytes > 0
        or (layer.weight_bytes > 0 and layer.name not in owners)
    }


def check_split(layout: ServingLayout, shape: ModelShape) -> None:
    """Heads that T divides, KV heads that T divides or that divide T, layers that P divides."""
    if shape.heads % layout.tp:
        raise UsageError(
            f"--tp {layout.tp} does not divide the model's {shape.heads} attention heads",
            "give a --tp that divides them",
        )
    if shape.kv_heads % layout.tp and layout.tp % shape.kv_heads:
        raise UsageError(
            f"--tp {layout.tp} and the model's {shape.kv_heads} KV heads: one must divide the other",
            "give a --tp that divides the KV heads or is a multiple of them",
        )
    if shape.layers % layout.pp:
        raise UsageError(
            f"--pp {layout.pp} does not divide the model's {shape.layers} layers into even stages",
            "give a --pp that divides the layers",
        )


def resolve_parallel(
    layout: ServingLayout,
    model: Any,
    source: str,
    gpu: str,
    activation_bytes: float,
    catalogs: Sequence[str] = (),
    intra_node_gbps: float | None = None,
    inter_node_gbps: float | None = None,
) -> ParallelServing:
    """The layout on `gpu`'s links: the figure given (--intra-node-gbps, --inter-node-gbps), else the
    catalogue's intra-node link peak (one direction) and the assumed inter-node figure; each scope's latency from
    the shipped device profile (else assumed)."""
    shape = model_shape(model, source)
    check_split(layout, shape)
    device = resolve_device(gpu, catalogs=catalogs)
    latencies = _profile_latencies(device.id)
    intra = inter = None
    given = {
        "intra-node": _given(intra_node_gbps, "--intra-node-gbps"),
        "inter-node": _given(inter_node_gbps, "--inter-node-gbps"),
    }
    needs_intra = layout.tp > 1 or layout.pp - 1 > layout.node_crossings
    if needs_intra and given["intra-node"] is not None:
        intra = _link("intra-node", *given["intra-node"], latencies)
    elif needs_intra:
        if device.intra_node is None:
            raise UsageError(
                f"{device.id} has no intra-node link figure in the catalogue, so tensor parallelism and "
                "pipeline sends inside a node cannot be priced",
                "give --intra-node-gbps (GB/s per direction), or add intra_node_link to its entry with "
                "--catalog FILE (docs/catalogue.md)",
            )
        intra = _link("intra-node", device.intra_node.value, device.intra_node.source, latencies)
    if layout.node_crossings:
        inter = _link(
            "inter-node", *(given["inter-node"] or (device.inter_node.value, device.inter_node.source)), latencies
        )
    return ParallelServing(layout, shape, activation_bytes, intra if layout.tp > 1 else None, intra, inter)


def _given(gbps: float | None, flag: str) -> tuple[float, str] | None:
    if gbps is None:
        return None
    if isinstance(gbps, bool) or not isinstance(gbps, (int, float)) or not 0 < gbps < math.inf:
        raise UsageError(f"{flag} must be a number of GB/s > 0, got {gbps!r}")
    return float(gbps), flag


def _link(scope: str, gbps: float, source: str, latencies: Mapping[str, tuple[float, str]]) -> Link:
    latency, latency_source = latencies.get(scope, (ASSUMED_LATENCY_S[scope], ASSUMED_LATENCY_SOURCE))
    return Link(scope, gbps * GB, latency, f"{source}; latency: {latency_source}")


def _profile_latencies(device_id: str) -> dict[str, tuple[float, str]]:
    """Each scope's latency per ring step from the shipped device profile of `device_id`; none without one."""
    profile = load_profiles().get(device_id)
    if profile is None:
        return {}
    return {
        network.scope.replace("_", "-"): (network.latency_s, f"shipped device profile of {device_id}")
        for network in profile.networks.values()
    }
