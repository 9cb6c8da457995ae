"""prunegen-export, also `python -m prunegen.export` (CONTRACT.md): compact a masked checkpoint's generator,
verify it, time it and write export.json (`prunegen.deploy.export`). torch is imported once the command
line has passed its checks: `--help` and a typo answer in about a second."""

import logging

import hydra
from omegaconf import DictConfig

from prunegen import CONFIG_DIR
from prunegen.run.overrides import preflight


@preflight("export")
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    from prunegen.deploy.export import export, summary
    from prunegen.run.lifecycle import RunInterrupted

    try:
        r = export(cfg)
    except RunInterrupted as err:  # recorded as interrupted; a non-zero exit tells the scheduler
        raise SystemExit(128 + err.signum) from err
    for line in summary(r):
        logging.getLogger("prunegen").info(line)  # the console and <out>/export.log


if __name__ == "__main__":
    main()
