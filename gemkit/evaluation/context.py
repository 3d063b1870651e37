"""What every benchmark gets: the model under test, how to reach its reference, batch sizes."""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator

from gemkit.models import ModelBundle


@dataclass
class EvalContext:
    bundle: ModelBundle
    reference: ModelBundle | None = None
    batch_size: int = 8
    seed: int = 0

    @contextmanager
    def reference_model(self) -> Iterator[Any]:
        """The reference policy: an explicit reference bundle, else the base (LoRA adapters disabled), else None."""
        if self.reference is not None:
            yield self.reference.model
        elif hasattr(self.bundle.model, "disable_adapter"):
            with self.bundle.model.disable_adapter():
                yield self.bundle.model
        else:
            with nullcontext():
                yield None
