"""`flopcalc optimal`: compute-optimal parameters and tokens under named loss fits, side by side.

The fits disagree (Besiroglu et al. 2024 show Hoffmann et al.'s approach-3 coefficients put the optimum at
about half Chinchilla's own size), so every fit is shown with its source and coefficients, never one answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import UsageError

FLOP_PER_PARAM_TOKEN = 6  # C = 6ND (Kaplan et al. 2020; Hoffmann et al. 2022 use the same)
SCOPE_NOTE = (
    "these fits describe one data set (MassiveText) and one architecture family (dense decoder-only "
    "transformers trained as in Hoffmann et al. 2022); other data or architectures shift them"
)


@dataclass(frozen=True)
class LossFit:
    """L(N, D) = E + A / N^alpha + B / D^beta, with its source."""

    name: str
    source: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, params: float, tokens: float) -> float:
        return self.E + self.A / params**self.alpha + self.B / tokens**self.beta

    def optimal_params(self, compute: float) -> float:
        """N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann eq. 4)."""
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        return g * (compute / FLOP_PER_PARAM_TOKEN) ** (self.beta / (self.alpha + self.beta))

    def optimal_tokens_for_params(self, params: float) -> float:
        """D with N optimal: invert N_opt(C) for C, then D = C / (6N)."""
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        compute_over_6 = (params / g) ** ((self.alpha + self.beta) / self.beta)
        return compute_over_6 / params

    def to_dict(self) -> dict[str, Any]:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}


HOFFMANN = LossFit(
    "Hoffmann et al. 2022 (approach 3)",
    "Hoffmann et al. 2022, Training Compute-Optimal LLMs, sec. 3.3 eq. 2 and D.2 (arXiv:2203.15556)",
    E=1.69,
    A=406.4,
    B=410.7,
    alpha=0.34,
    beta=0.28,
)
BESIROGLU = LossFit(
    "Besiroglu et al. 2024 (refit)",
    "Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt, eq. 2 / Table 1 (arXiv:2404.10102)",
    E=1.82,
    A=482.01,
    B=2085.43,
    alpha=0.3478,
    beta=0.3658,
)
FITS = (HOFFMANN, BESIROGLU)
TOKENS_PER_PARAM = 20
RULE_NAME = "20 tokens per parameter"
RULE_SOURCE = (
    "Hoffmann et al. 2022, Table 3 (about 20 tokens per parameter); C = 6ND; "
    "loss predicted by the Besiroglu et al. 2024 fit"
)


@dataclass(frozen=True)
class OptimalChoice:
    """One fit's answer: parameters, tokens, compute (6ND), and the losses the fits predict there."""

    name: str
    source: str
    params: float
    tokens: float
    coefficients: dict[str, float] | None
    predicted_loss: float | None

    @property
    def compute(self) -> float:
        return FLOP_PER_PARAM_TOKEN * self.params * self.tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "params": self.params,
            "tokens": self.tokens,
            "tokens_per_param": self.tokens / self.params,
            "compute_flop": self.compute,
            "coefficients": self.coefficients,
            "predicted_loss": self.predicted_loss,
        }


@dataclass(frozen=True)
class OptimalResult:
    given: str  # "compute", "params" or "tokens"
    value: float
    choices: tuple[OptimalChoice, ...]
    notes: tuple[str, ...] = (SCOPE_NOTE,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "given": self.given,
            "value": self.value,
            "fits": [c.to_dict() for c in self.choices],
            "notes": list(self.notes),
        }


def _positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise UsageError(f"{what} must be a finite number > 0, got {value!r}", "e.g. --compute 5.76e23")
    return float(value)


def _fit_choice(fit: LossFit, params: float, tokens: float) -> OptimalChoice:
    return OptimalChoice(fit.name, fit.source, params, tokens, fit.to_dict(), fit.loss(params, tokens))


def optimal(*, compute: float | None = None, params: float | None = None, tokens: float | None = None) -> OptimalResult:
    """Exactly one of compute (FLOP), params or tokens: the compute-optimal split under each fit and the rule."""
    given = [
        (name, value)
        for name, value in (("compute", compute), ("params", params), ("tokens", tokens))
        if value is not None
    ]
    if len(given) != 1:
        raise UsageError(
            "nothing to optimise"
            if not given
            else f"{' and '.join('--' + name for name, _ in given)} exclude each other",
            "give one of --compute C, --params N or --tokens D",
        )
    name, value = given[0]
    value = _positive(value, "--" + name)
    choices = []
    for fit in FITS:
        if name == "compute":
            n = fit.optimal_params(value)
            d = value / FLOP_PER_PARAM_TOKEN / n
        elif name == "params":
            n, d = value, fit.optimal_tokens_for_params(value)
        else:  # tokens: N with D = C/(6N) optimal, by the same closed form with the roles swapped
            swapped = LossFit(fit.name, fit.source, fit.E, fit.B, fit.A, fit.beta, fit.alpha)
            d, n = value, swapped.optimal_tokens_for_params(value)
        choices.append(_fit_choice(fit, n, d))
    if name == "compute":
        n = (value / (FLOP_PER_PARAM_TOKEN * TOKENS_PER_PARAM)) ** 0.5
        d = TOKENS_PER_PARAM * n
    elif name == "params":
        n, d = value, TOKENS_PER_PARAM * value
    else:
        n, d = value / TOKENS_PER_PARAM, value
    rule_losses = {fit.name: fit.loss(n, d) for fit in FITS}
    choices.append(OptimalChoice(RULE_NAME, RULE_SOURCE, n, d, None, rule_losses[BESIROGLU.name]))
    return OptimalResult(name, value, tuple(choices))
