"""A config naming only model_type says which defaults it was counted with; auto_map (remote code) is never run,
and a note says so."""

import json

import pytest

from flopcalc.loaders.config_notes import config_notes


class LlamaForCausalLM:  # stands for the built model: only its class name is read
    pass


def test_a_config_naming_only_model_type_lists_the_defaults_it_was_counted_with():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig()
    (note,) = config_notes({"model_type": "llama", "transformers_version": "5.0.0"}, config, LlamaForCausalLM())
    assert note.startswith("the config names only model_type 'llama': counted with LlamaConfig's defaults (")
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        assert f"{key} {getattr(config, key):,}" in note
    assert config_notes({"model_type": "llama", "hidden_size": 64}, config, LlamaForCausalLM()) == ()


def test_auto_map_is_named_and_never_run(tmp_path):
    pytest.importorskip("transformers")
    from flopcalc import count

    marker = tmp_path / "ran"
    (tmp_path / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('remote code ran')\n")
    config = {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 100,
        "max_position_embeddings": 16,
        "auto_map": {"AutoModel": "modeling_evil.EvilModel"},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    report = count(str(tmp_path / "config.json"))
    assert not marker.exists()
    assert [note for note in report.notes if "auto_map" in note] == [
        "auto_map names remote code (modeling_evil.EvilModel); flopcalc never runs it: counted transformers' own "
        "BertLMHeadModel for model_type 'bert'"
    ]
