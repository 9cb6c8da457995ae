from prunegen.pruning.callback import PruningCallback
from prunegen.pruning.schedules import Schedule

__all__ = ["PruningCallback", "Schedule"]
