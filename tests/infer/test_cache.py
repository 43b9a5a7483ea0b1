"""flopcalc.infer.cache: which models are called to generate and how, and which are refused before counting."""

import pytest
import torch
from torch import nn

from flopcalc.errors import UsageError
from flopcalc.infer.cache import cache_keyword, last_logits_only, returned_cache


class Attention(nn.Module):
    def __init__(self, is_causal):
        super().__init__()
        self.is_causal = is_causal


class Generator(nn.Module):
    def __init__(self, *flags):
        super().__init__()
        self.attention = nn.ModuleList(Attention(flag) for flag in flags)

    def forward(self, input_ids, past_key_values=None, use_cache=False, logits_to_keep=0):
        return input_ids


class Plain(nn.Module):
    def forward(self, x):
        return x


def test_the_cache_keyword_and_the_logits_of_the_last_position():
    assert cache_keyword(Generator(), "m") == "past_key_values"  # declares nothing: taken at its word
    assert cache_keyword(Generator(True, False), "m") == "past_key_values"  # an encoder-decoder: both kinds
    assert last_logits_only(Generator()) == {"logits_to_keep": 1}
    assert last_logits_only(Plain()) == {}


def test_a_model_that_cannot_generate_is_refused():
    with pytest.raises(UsageError, match=r"m \(Generator\) is not a causal language model: its attention sees"):
        cache_keyword(Generator(False, False), "m")
    with pytest.raises(UsageError, match="does not take input_ids, past_key_values and use_cache"):
        cache_keyword(Plain(), "m")


def test_the_returned_cache_by_name_or_second_item():
    keys = (torch.zeros(1),)
    assert returned_cache({"past_key_values": keys}, "past_key_values") is keys
    assert returned_cache((torch.zeros(1), keys), "past_key_values") is keys
    assert returned_cache(torch.zeros(1), "cache") is None
