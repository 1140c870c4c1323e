"""Engine settings, turned into vLLM's ``AsyncEngineArgs`` in one place."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from src.config._base import Settings, settings_config
from src.errors import ConfigurationError

if TYPE_CHECKING:
    from vllm.engine.arg_utils import AsyncEngineArgs

__all__ = ["VLLMConfig"]

# Fields of AsyncEngineArgs that VLLMConfig names itself; engine_args may not repeat them.
_NAMED_FIELDS = (
    "model",
    "tokenizer",
    "max_model_len",
    "dtype",
    "enforce_eager",
    "max_num_seqs",
    "seed",
    "gpu_memory_utilization",
    "trust_remote_code",
)


class VLLMConfig(Settings):
    """What model to serve and how vLLM should run it.

    Environment variables ``EVLLM_ENGINE__<FIELD>`` override fields, e.g.
    ``EVLLM_ENGINE__MODEL=/models/qwen``.
    """

    model_config = settings_config("engine")

    model: str = Field(
        default="Qwen/Qwen3-0.6B",
        min_length=1,
        description="Hugging Face model id or local model folder (vLLM's own default id).",
    )
    tokenizer: str | None = Field(
        default=None, min_length=1, description="Tokenizer id or folder; None uses the model's."
    )
    max_model_len: int | None = Field(
        default=None, gt=0, description="Context length in tokens; None takes the model's."
    )
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = Field(
        default="auto", description="Weight and activation dtype."
    )
    enforce_eager: bool = Field(
        default=False, description="Run eagerly: no CUDA graphs or torch.compile (faster start)."
    )
    max_num_seqs: int | None = Field(
        default=None, gt=0, description="Most sequences the engine batches in one step."
    )
    seed: int | None = Field(default=None, ge=0, description="Engine-level random seed.")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="Share of GPU memory vLLM may take (GPU only)."
    )
    trust_remote_code: bool = Field(
        default=False, description="Allow model folders to run their own Python code."
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other AsyncEngineArgs field, passed through unchanged.",
    )

    @field_validator("engine_args")
    @classmethod
    def _no_named_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(set(value) & set(_NAMED_FIELDS))
        if clash:
            raise ValueError(f"set {clash} as VLLMConfig fields, not inside engine_args")
        return value

    def to_engine_args(self) -> AsyncEngineArgs:
        """Build vLLM's ``AsyncEngineArgs`` from these settings.

        Raises:
            ConfigurationError: ``engine_args`` names a field vLLM does not have,
                or vLLM rejects a value.
        """
        from vllm.engine.arg_utils import AsyncEngineArgs

        known = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
        unknown = sorted(set(self.engine_args) - known)
        if unknown:
            raise ConfigurationError(f"engine_args has fields vLLM does not know: {unknown}")
        named = {name: getattr(self, name) for name in _NAMED_FIELDS}
        named = {k: v for k, v in named.items() if v is not None}
        try:
            return AsyncEngineArgs(**named, **self.engine_args)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"vLLM rejected the engine settings: {exc}") from exc
