"""Bounded exponential backoff, shared by the client (resending a request the server could not
take) and the server (reloading a version that failed to load)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Backoff:
    """`retries` attempts after the first, waiting base_seconds, doubling up to max_seconds.

    Subclasses set their defaults and the command-line flags that set the fields (FLAGS), so
    a bad value's message names the flag.
    """

    retries: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    FLAGS = ("--retries", "--retry_seconds")

    def __post_init__(self):
        retries_flag, seconds_flag = self.FLAGS
        if self.retries < 0:
            raise ValueError(f"retries ({retries_flag}) must be >= 0, got {self.retries}")
        if self.base_seconds < 0 or self.max_seconds < 0:
            raise ValueError(
                f"base_seconds ({seconds_flag}) and max_seconds must be >= 0, got "
                f"{self.base_seconds} and {self.max_seconds}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the `attempt`-th retry (1-based)."""
        return min(self.base_seconds * 2.0 ** (attempt - 1), self.max_seconds)
