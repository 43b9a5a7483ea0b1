"""The meter in trainers: the Hugging Face TrainerCallback and the Lightning Callback, on CPU, tiny models."""

import pytest
import torch
import torch.nn as nn

import flopcalc


class _Tokens(torch.utils.data.Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, index):
        ids = torch.randint(0, 50, (8,), generator=torch.Generator().manual_seed(index))
        return {"input_ids": ids, "labels": ids}


def test_huggingface_callback_logs_mfu_and_tflops_into_the_trainers_logs(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from flopcalc.meter.huggingface import MeterCallback

    model = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16)
    )
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        max_steps=4,
        logging_steps=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Tokens())
    callback = MeterCallback.attach(trainer, peak_flops=1e12)
    assert trainer.callback_handler.callbacks[0] is callback
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all({"mfu", "tflops", "tokens_per_second", "mfu_given"} <= set(e) for e in logged)
    # the counted step: the loss's backward on a batch of 4 x 8 tokens, as the Trainer's collator makes it
    batch = {"input_ids": torch.zeros(4, 8, dtype=torch.long), "labels": torch.zeros(4, 8, dtype=torch.long)}
    loss_only = flopcalc.count(_Loss(model), (batch,)).total
    assert callback.meter.flops_per_step == loss_only
    # one Trainer step = 2 micro-batches of 4: 8 samples and twice the counted FLOPs per step
    last = logged[-1]
    assert last["samples_per_second"] / last["steps_per_second"] == pytest.approx(8)
    assert last["tflops"] * 1e12 / last["steps_per_second"] == pytest.approx(2 * loss_only)
    assert last["mfu"] == pytest.approx(last["tflops"] * 1e12 / 1e12)


class _Loss(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model(**batch).loss


def test_lightning_callback_logs_through_the_module_and_counts_its_training_step():
    lightning = pytest.importorskip("lightning")
    from flopcalc.meter.lightning import MeterCallback, peak_precision

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.TensorDataset(torch.randn(40, 16), torch.randn(40, 1))
    callback = MeterCallback(peak_flops=1e12)
    trainer = lightning.Trainer(
        max_steps=4,
        callbacks=[callback],
        log_every_n_steps=2,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    module = Module()
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=8))
    assert {"mfu", "tflops", "samples_per_second", "mfu_given"} <= set(trainer.callback_metrics)
    x, y = torch.zeros(8, 16), torch.zeros(8, 1)

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module.net

        def forward(self, x, y):
            return nn.functional.mse_loss(self.net(x), y)

    assert callback.meter.flops_per_step == flopcalc.count(Step(), (x, y)).total
    assert callback.meter.total().steps == 4  # the clock starts when the first batch begins, after the count
    assert (peak_precision("bf16-mixed"), peak_precision("16-mixed"), peak_precision("32-true")) == (
        "bf16",
        "fp16",
        "fp32",
    )


def test_the_plain_loop_example_runs_and_prints_its_readings(monkeypatch, capsys, examples):
    import importlib.util

    spec = importlib.util.spec_from_file_location("meter_loop", examples / "meter_loop.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setattr("sys.argv", ["meter_loop.py", "--steps", "10", "--batch-size", "2", "--seq-len", "8"])
    example.main()
    out = capsys.readouterr().out
    assert "FLOP per step" in out and "step 10:" in out and "tokens/s" in out and "whole run:" in out
