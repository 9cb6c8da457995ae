"""Run lifecycle: checks, run folders, checkpoints, records, the small training callbacks, loggers, console."""
