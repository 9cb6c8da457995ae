from prunegen.pruning.callback import PruningCallback
from prunegen.pruning.engine import PruningEngine
from prunegen.pruning.schedules import Schedule
from prunegen.pruning.stats import GradientStatistics

__all__ = ["GradientStatistics", "PruningCallback", "PruningEngine", "Schedule"]
