"""What a model family trains its generator with, as a public surface: added loss terms and an lr plan.

Every family (GAN, VAE) keeps its own training step and exposes, through `GeneratorObjective`:

- `add_generator_loss(term)` / `remove_generator_loss(name)`: a `GeneratorLossTerm` is called in the
  training step with (z, labels, fake), `fake` being the generator's output on (z, labels) with grad,
  and returns (loss, logs); `weight * loss` is added to what the generator minimises. Distillation is
  one such term (`prunegen.distill`). The diffusion family calls its terms with (x_t, t, eps): noisy
  images, their timesteps and the UNet's predicted noise.
- `set_base_loss_weight(w)`: the weight of the family's own loss (a GAN's adversarial G loss, a VAE's
  negative ELBO); 0 trains the generator on the added terms alone (a VAE's encoder is then untouched).
- `reset_generator_optimizer(lr, decay_steps)`: a new objective starts from fresh Adam moments at its own
  learning rate, constant or cosine to 0 over `decay_steps` generator steps. The plan is a Lightning lr
  scheduler (`GeneratorLR`, returned by `configure_optimizers`), so checkpoints carry and resume it.
"""

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

TermFn = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class GeneratorLossTerm:
    """A term of the generator's loss: `weight * fn(z, labels, fake)[0]`; the logs are logged as named.

    Subclasses override `__call__`, and `watch(generator)` when they need something around the
    generator's forward (its activations, the mode of its BatchNorm layers).
    """

    def __init__(self, name: str, fn: TermFn | None = None, weight: float = 1.0) -> None:
        self.name, self.fn, self.weight = name, fn, weight

    def watch(self, generator: nn.Module) -> AbstractContextManager:
        """Entered around the generator's forward that produces `fake`."""
        return nullcontext()

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.fn is None:
            raise NotImplementedError(f"generator loss term {self.name!r} has no fn and does not override __call__")
        return self.fn(z, labels, fake)


class GeneratorLR(LRScheduler):
    """The lr plan of the optimizer that trains the generator, stepped once per generator step.

    It keeps the optimizer's learning rate until `restart(lr, decay_steps)`; from then the lr is `lr`
    (None: the current one), constant or, with `decay_steps`, cosine to 0 over that many steps.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.peak: float | None = None
        self.origin, self.decay_steps = 0, None
        super().__init__(optimizer)

    def restart(self, lr: float | None = None, decay_steps: int | None = None) -> None:
        if decay_steps is not None and decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1 (or None: constant), got {decay_steps}")
        self.peak = lr if lr is not None else self.optimizer.param_groups[0]["lr"]
        self.origin, self.decay_steps = self.last_epoch, decay_steps
        self._last_lr = self._plan()
        for group, value in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = value

    def get_lr(self) -> list[float]:
        return self._plan()

    def _plan(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.peak is None:
            return [group["lr"] for group in groups]
        if not self.decay_steps:
            return [self.peak] * len(groups)
        done = (self.last_epoch - self.origin) / self.decay_steps
        return [0.5 * self.peak * (1 + math.cos(math.pi * min(1.0, done)))] * len(groups)


class GeneratorObjective:
    """Mixin of the LightningModules: the added terms, the base loss weight and the optimizer reset.

    A family calls `_init_objective()` in its constructor, implements `_generator_optimization()`
    -> (the optimizer that trains the generator, its `GeneratorLR`), and in its training step runs
    the generator through `_generate(z, labels)` and adds the terms with `_add_terms(...)`.
    """

    def _init_objective(self) -> None:
        self._terms: dict[str, GeneratorLossTerm] = {}
        self.base_loss_weight = 1.0

    @property
    def generator_losses(self) -> tuple[GeneratorLossTerm, ...]:
        return tuple(self._terms.values())

    def add_generator_loss(self, term: GeneratorLossTerm) -> None:
        if term.name in self._terms:
            raise ValueError(f"a generator loss term named {term.name!r} is already added: remove it first")
        self._terms[term.name] = term

    def remove_generator_loss(self, name: str) -> None:
        self._terms.pop(name, None)

    def set_base_loss_weight(self, weight: float) -> None:
        if weight < 0:
            raise ValueError(f"the base loss weight must be >= 0, got {weight}")
        self.base_loss_weight = weight

    def reset_generator_optimizer(self, lr: float | None = None, decay_steps: int | None = None) -> None:
        """Drop the Adam moments of the generator's optimizer and restart its lr plan (see `GeneratorLR`)."""
        optimizer, plan = self._generator_optimization()
        optimizer.state.clear()
        plan.restart(lr, decay_steps)

    def _generator_optimization(self) -> tuple[torch.optim.Optimizer, GeneratorLR]:
        raise NotImplementedError

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None, forward: Callable | None = None) -> torch.Tensor:
        """The generator's forward of the generator step (or `forward`, e.g. a UNet's eps(x_t, t)), inside
        every term's `watch`."""
        with ExitStack() as stack:
            for term in self._terms.values():
                stack.enter_context(term.watch(self.generator))
            return (forward or self.generator)(z, labels)

    def _add_terms(self, total: torch.Tensor | None, z: torch.Tensor, labels: torch.Tensor | None, fake: torch.Tensor,
                   logs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """`total` (None: no base loss) plus every term's weighted loss; the terms' logs go into `logs`."""
        for term in self._terms.values():
            loss, term_logs = term(z, labels, fake)
            logs.update(term_logs)
            weighted = loss if term.weight == 1 else term.weight * loss
            total = weighted if total is None else total + weighted
        return total
