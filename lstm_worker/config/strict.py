"""The base of every settings model, the driver's too."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class Strict(BaseModel):
    """Every settings model, the driver's too: an unknown key fails, nothing changes, and
    a number is one the float32 training can hold (1e39 would turn into inf in a task)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _fits_float32(cls, value: Any) -> Any:
        if isinstance(value, float) and not abs(value) <= _FLOAT32_MAX:
            raise ValueError(
                f"{value!r} does not fit in float32, the precision training runs at "
                f"(at most {_FLOAT32_MAX:.3g})"
            )
        return value
