#!/usr/bin/env python3
"""The seed's model in Keras 3 (JAX backend, CPU), as a sweep command run.

One Dense unit with a linear activation, He-normal kernel and a zero bias, plain SGD on the mean
squared error, the gradient's global norm clipped to `clip_norm` when `clip` is set
(`global_clipnorm`), minibatches shuffled each epoch (`fit(shuffle=True)`), in Keras's default
float32. It reads its settings from $SWEEP_PARAMS and the data, already whitened and normalized as
the run asks, from $SWEEP_DATA, seeds Keras (Python, NumPy and the backend) and the initializer
from $SWEEP_SEED, and appends one metrics line per epoch to $SWEEP_METRICS from a callback: the
train MSE over all rows from the current weights in float64, in the target's original units (MSE
in training units times target_sd squared), and Keras's own `loss` (a running mean over the
epoch's minibatches, in float32) as `keras_loss`. A non-finite train MSE ends the run with
"status": "diverged".

Keras runs one jitted call per epoch (`steps_per_execution` = the epoch's minibatches) rather than
one per minibatch: at batch 4 Keras's per-step dispatch, not the arithmetic, was most of the time.
The steps are the same, in the same order, with the same weights after each (checked bit for bit:
docs/explanation/keras.md); KERAS_STEPS_PER_EXECUTION=1 in the environment restores one per step.

sweep runs it once per run of the grid, in this folder, as `python3 train.py`
(examples/keras/ablation.toml); examples/keras/run.sh makes the pinned virtual environment
(requirements.txt beside this file) and runs the sweep with it first on PATH.
"""
import json
import math
import os

os.environ["KERAS_BACKEND"] = "jax"   # before keras is imported

import keras
import numpy as np
import pyarrow.parquet as pq

with open(os.environ["SWEEP_PARAMS"]) as f:
    config = json.load(f)
p, own = config["params"], config["sweep"]
seed = int(os.environ["SWEEP_SEED"])

table = pq.read_table(os.environ["SWEEP_DATA"])
data = np.column_stack([table.column(i).to_numpy() for i in range(table.num_columns)])
x, y = data[:, :-1], data[:, -1]
n, d = x.shape


class SweepMetrics(keras.callbacks.Callback):
    """One metrics line per epoch; the train MSE from the weights in float64, over all rows."""
    def __init__(self, x, y, target_sd):
        super().__init__()
        self.x, self.y, self.scale = x, y, target_sd ** 2
    def write(self, epoch, **extra):
        w, b = (v.astype(np.float64) for v in self.model.get_weights())
        r = self.x @ w[:, 0] + b[0] - self.y
        mse = float(r @ r) / len(r) * self.scale
        if not math.isfinite(mse):
            extra["status"] = "diverged"
            self.model.stop_training = True
        with open(os.environ["SWEEP_METRICS"], "a") as f:
            f.write(json.dumps({"epoch": epoch, "train_mse": mse, **extra}) + "\n")
    def on_train_begin(self, logs=None): self.write(0)
    def on_epoch_end(self, epoch, logs=None): self.write(epoch + 1, keras_loss=float(logs["loss"]))


keras.utils.set_random_seed(seed)   # Python, NumPy (the fit's shuffle) and the JAX backend
model = keras.Sequential([
    keras.Input(shape=(d,)),
    keras.layers.Dense(1, activation="linear",
                       kernel_initializer=keras.initializers.HeNormal(seed=seed),
                       bias_initializer="zeros"),
])
optimizer = keras.optimizers.SGD(learning_rate=p["learning_rate"],
                                 global_clipnorm=p["clip_norm"] if p["clip"] else None)
steps = int(os.environ.get("KERAS_STEPS_PER_EXECUTION", 0)) or math.ceil(n / p["batch_size"])
model.compile(optimizer=optimizer, loss="mse", steps_per_execution=steps)

# Keras trains in its default floatx (float32): cast once here rather than per minibatch.
floatx = keras.config.floatx()
model.fit(x.astype(floatx), y.astype(floatx), batch_size=p["batch_size"], epochs=p["epochs"],
          shuffle=True, verbose=0, callbacks=[SweepMetrics(x, y, own["target_sd"])])
