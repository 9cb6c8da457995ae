from prunegen.data.digits import DigitsDataModule

__all__ = ["DigitsDataModule"]
