"""The library's error tree.

Everything this package raises on purpose derives from :class:`EnhancedVLLMError`.
Errors a caller can fix (bad input, bad configuration, wrong lifecycle order)
also derive from the matching built-in (``ValueError``, ``RuntimeError``), so
code written against plain vLLM keeps catching them. vLLM's own
``EngineDeadError`` is never wrapped: a dead engine is fatal and must look the
same as it does under plain ``AsyncLLM``.
"""

from __future__ import annotations

__all__ = [
    "CacheClearError",
    "ConfigurationError",
    "EngineStartError",
    "EnhancedVLLMError",
    "HandlerStateError",
    "InvalidRequestError",
]


class EnhancedVLLMError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigurationError(EnhancedVLLMError, ValueError):
    """A configuration value is missing, malformed or unknown to vLLM."""


class InvalidRequestError(EnhancedVLLMError, ValueError):
    """A request was refused before reaching the engine (prompt, params, id)."""


class HandlerStateError(EnhancedVLLMError, RuntimeError):
    """A call came before ``start()`` or after ``stop()`` (of the handler or one of
    its parts), or a request's outputs were read twice."""


class EngineStartError(EnhancedVLLMError, RuntimeError):
    """The vLLM engine could not be started; the cause is chained."""


class CacheClearError(EnhancedVLLMError, RuntimeError):
    """A clear could not reach every place that holds answers; what it could reach is cleared.

    Attributes:
        failed: The places that could not be cleared (``"redis"``, ``"semantic-redis"``...).
        removed: How many answers were removed where the clear did reach.
    """

    def __init__(self, failed: list[str], removed: int = 0) -> None:
        super().__init__(
            f"clear did not reach {', '.join(failed)}: answers there are still stored "
            f"and may be served; retry once it is back ({removed} removed elsewhere)"
        )
        self.failed = failed
        self.removed = removed
