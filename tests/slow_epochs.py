"""A callback for CLI tests: each epoch ends half a second later, so a signal can land mid-run."""

import time

import lightning as L


class SlowEpochs(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        time.sleep(0.5)
