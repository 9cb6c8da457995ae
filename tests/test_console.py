"""console.quiet(): the known library noise is filtered, everything else still reaches the user."""

import logging
import warnings

from prunegen.run.console import quiet


def test_quiet_drops_known_noise_only(caplog):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet()
        warnings.warn("Found 12 module(s) in eval mode at the start of training. This may lead to ...", UserWarning)
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        warnings.warn("pruning.final_sparsity=0.99 leaves one channel", UserWarning)
    assert [str(w.message) for w in seen] == ["pruning.final_sparsity=0.99 leaves one channel"]
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        log.info("💡 Tip: For seamless cloud logging ... try installing [litlogger](https://pypi.org/project/litlogger/)")
        log.info("`Trainer.fit` stopped: `max_epochs=1` reached.")
    assert [r.getMessage() for r in caplog.records] == ["`Trainer.fit` stopped: `max_epochs=1` reached."]
