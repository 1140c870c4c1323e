"""``python -m src serve``: vLLM's OpenAI-compatible server over the cache.

The command line is ``vllm serve``'s (vLLM's own parser) plus a "Response
cache" group. The server is vLLM's own application, built by vLLM's launcher
code (``build_and_serve``) around a :class:`ServerAsyncLLM` as its engine
client; :class:`CacheMiddleware` joins the two through vLLM's ``--middleware``
option. Every route, flag and response of ``vllm serve`` stays as it is.

Settings of the cache come, lowest first, from ``EVLLM_CACHE__*`` and
``EVLLM_SIMILARITY__*`` environment variables, the ``--cache-config`` and
``--similarity-config`` JSON objects, then the single flags.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from src.config import CacheConfig, SimilarityConfig
from src.errors import ConfigurationError

if TYPE_CHECKING:
    from src.server.engine import ServerAsyncLLM

__all__ = ["cache_configs", "check_launch_mode", "main", "make_parser", "serve"]

logger = logging.getLogger(__name__)

MIDDLEWARE = "src.server.middleware.CacheMiddleware"

#: vLLM launch modes that start API servers in other processes, which this
#: command does not wire to a cache.
_UNSUPPORTED = {
    "headless": "--headless",
    "grpc": "--grpc",
    "data_parallel_external_lb": "--data-parallel-external-lb",
    "data_parallel_hybrid_lb": "--data-parallel-hybrid-lb",
    "data_parallel_multi_port_external_lb": "--data-parallel-multi-port-external-lb",
}


def make_parser() -> Any:
    """vLLM's ``serve`` parser with the cache's options added."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(
        prog="python -m src serve",
        usage="python -m src serve [model_tag] [options]",
        description=(
            "vLLM's OpenAI-compatible server with a response cache in front of the "
            "engine. Takes every option of `vllm serve`, plus the cache's."
        ),
    )
    parser = make_arg_parser(parser)
    group = parser.add_argument_group(
        "ResponseCache",
        "Exact answers in memory (and Redis), paraphrases by the semantic stage. "
        "Per request: the namespace header, Cache-Control: no-cache / no-store, or "
        'extra_body={"cache": {"namespace", "read", "write", "semantic"}}.',
    )
    group.add_argument(
        "--redis-url",
        default=None,
        help="Redis for answers and the shared semantic index; None keeps both in memory.",
    )
    group.add_argument(
        "--cache-namespace",
        default=None,
        help="Namespace of requests that name none; None is CacheConfig's ('default').",
    )
    group.add_argument(
        "--cache-namespace-header",
        default="X-Cache-Namespace",
        help="Request header that names the namespace.",
    )
    group.add_argument(
        "--semantic-cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Answer paraphrases from cache; None is SimilarityConfig.enabled (on).",
    )
    group.add_argument(
        "--cache-config",
        default=None,
        metavar="JSON",
        help="CacheConfig fields as a JSON object, e.g. '{\"ttl_s\": 600}'.",
    )
    group.add_argument(
        "--similarity-config",
        default=None,
        metavar="JSON",
        help='SimilarityConfig fields as a JSON object, e.g. \'{"lookup_policy": "hold"}\'.',
    )
    return parser


def cache_configs(args: argparse.Namespace) -> tuple[CacheConfig, SimilarityConfig]:
    """The cache's settings from the command line (over the environment).

    Raises:
        ConfigurationError: A JSON option is not an object, or a value is invalid.
    """
    cache = _json_object("--cache-config", args.cache_config)
    similarity = _json_object("--similarity-config", args.similarity_config)
    if args.redis_url is not None:
        cache["redis_url"] = args.redis_url
    if args.cache_namespace is not None:
        cache["default_namespace"] = args.cache_namespace
    if args.semantic_cache is not None:
        similarity["enabled"] = args.semantic_cache
    try:
        return CacheConfig(**cache), SimilarityConfig(**similarity)
    except ValueError as exc:
        raise ConfigurationError(f"invalid cache settings: {exc}") from exc


def _json_object(flag: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{flag} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigurationError(f"{flag} must be a JSON object, got {type(value).__name__}")
    return value


def check_launch_mode(args: argparse.Namespace) -> None:
    """Refuse the launch modes that run API servers in other processes.

    Raises:
        ConfigurationError: Naming the option that asked for one.
    """
    for name, flag in _UNSUPPORTED.items():
        if getattr(args, name, False):
            raise ConfigurationError(
                f"python -m src serve runs one API server; {flag} is not supported"
            )
    if (args.api_server_count or 1) > 1 or (args.data_parallel_size or 1) > 1:
        raise ConfigurationError(
            "python -m src serve runs one API server for one engine: "
            "--api-server-count and --data-parallel-size must be 1"
        )


def main(argv: list[str]) -> int:
    """Parse the command line and serve until SIGINT or SIGTERM."""
    import uvloop
    from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    from vllm.logger import configure_logging_from_args

    cli_env_setup()
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.model_tag is not None:
        args.model = args.model_tag
    try:
        check_launch_mode(args)
        cache_config, similarity_config = cache_configs(args)
    except ConfigurationError as exc:
        parser.error(str(exc))
    args.api_server_count = None
    if MIDDLEWARE not in args.middleware:
        args.middleware = [*args.middleware, MIDDLEWARE]
    configure_logging_from_args(args)
    validate_parsed_serve_args(args)
    uvloop.run(serve(args, cache_config, similarity_config))
    return 0


async def serve(
    args: argparse.Namespace, cache_config: CacheConfig, similarity_config: SimilarityConfig
) -> None:
    """Start the cache, the engine and vLLM's HTTP server; stop them in reverse."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.api_server.entry import build_and_serve
    from vllm.entrypoints.launchers.launcher import setup_server
    from vllm.usage.usage_lib import UsageContext

    from src.cache.manager import MultiLevelCacheManager
    from src.server.engine import ServerAsyncLLM
    from src.similarity.helper import SimilaritySearchHelper

    listen_address, sock = setup_server(args, reuse_port=False)
    engine_args = AsyncEngineArgs.from_cli_args(args)
    usage = UsageContext.OPENAI_API_SERVER
    vllm_config = engine_args.create_engine_config(usage_context=usage)

    cache = MultiLevelCacheManager.from_config(cache_config)
    similarity = (
        SimilaritySearchHelper.for_cache(similarity_config, cache_config)
        if similarity_config.enabled
        else None
    )
    engine: ServerAsyncLLM | None = None
    try:
        await cache.start()
        # The engine starts in a thread (seconds) while the semantic models load.
        starting = asyncio.ensure_future(
            asyncio.to_thread(
                ServerAsyncLLM.from_vllm_config,
                vllm_config=vllm_config,
                usage_context=usage,
                enable_log_requests=engine_args.enable_log_requests,
                aggregate_engine_logging=engine_args.aggregate_engine_logging,
                disable_log_stats=engine_args.disable_log_stats,
                cache=cache,
                cache_config=cache_config,
                similarity=similarity,
            )
        )
        try:
            if similarity is not None:
                await similarity.start()
                similarity.follow_evictions(cache)
        finally:
            engine = _server_engine(await starting)
        engine.namespace_header = args.cache_namespace_header
        shutdown = await build_and_serve(engine, listen_address, sock, args)
        await shutdown
    finally:
        if engine is not None:
            await engine.drain_writes()
            engine.shutdown(timeout=vllm_config.shutdown_timeout)
        if similarity is not None:
            await similarity.stop()
        await cache.close()
        sock.close()


def _server_engine(engine: object) -> ServerAsyncLLM:
    from src.server.engine import ServerAsyncLLM

    assert isinstance(engine, ServerAsyncLLM)
    return engine
