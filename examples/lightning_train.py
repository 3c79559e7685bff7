"""Train a tocha model with PyTorch Lightning's Trainer: tocha's data and model, Lightning's loop.

    pip install "tocha[lightning]"
    python examples/lightning_train.py --data mnist-sample --model mlp --epochs 2 [--devices 2] [--out runs]

With `--devices 2` Lightning trains with DDP on two processes (gloo on the CPU); each gets its
share of every global batch from tocha's data module. The checkpoint kept is the best on the
validation split (tocha's data module carves it: 10% of the training images, stratified), the test
split is scored once on it, and it becomes a tocha run folder, ready for `tocha evaluate`,
`tocha predict` and `tocha export`.
"""

import argparse

import lightning as L

from tocha.lightning import TochaDataModule, TochaModule, to_tocha_run

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="mnist-sample")
parser.add_argument("--model", default="mlp")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--devices", type=int, default=1)
parser.add_argument("--out", default="runs")
args = parser.parse_args()

data = TochaDataModule(data=args.data, model=args.model, epochs=args.epochs)
module = TochaModule.for_data(data)
best = L.pytorch.callbacks.ModelCheckpoint(monitor="val_accuracy", mode="max")  # chosen on validation
trainer = L.Trainer(
    max_epochs=args.epochs,
    accelerator="cpu",
    devices=args.devices,
    strategy="ddp" if args.devices > 1 else "auto",
    default_root_dir=f"{args.out}/lightning",
    enable_progress_bar=False,
    callbacks=[best],
)
trainer.fit(module, data)
val = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("val")}
trainer.test(module, data, ckpt_path="best", verbose=False)  # the test split, once, on the best weights
if trainer.is_global_zero:
    test = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("test")}
    run = to_tocha_run(trainer.checkpoint_callback.best_model_path, args.out, f"lightning-{args.model}")
    print(f"last epoch's val metrics {val}; test metrics of the best weights {test}; tocha run folder {run}")
