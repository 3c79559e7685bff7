"""Training: the setup, the loop, the epoch driver, stop and resume.

plan.py       the config checked before any data is read
resolve.py    ... and made concrete once the data is in
setup.py      config -> everything a run needs (data on the device, model, optimizer, task)
loop.py       the step loop: forward, loss, zero_grad, backward, step
tally.py      an epoch's running sums on the device; what a stop part-way keeps
fit.py        the epoch driver, in one scroll: train, validate, keep, stop, save; then test once
run.py        a run's life around it: `train` (fit from nothing), `resume` (fit from its state)
state.py      a live setup to a checkpoint and back
resume.py     the checks before --resume
interrupt.py  SIGTERM / Ctrl-C: stop at the next step
optimizers.py, schedules.py, augment.py, console.py
"""

from tocha.training.run import TrainResult, resume, train

__all__ = ["TrainResult", "resume", "train"]
