"""Command line: ``python -m src build-tiny-model DIR``, ``build-embedding-model``,
``build-judge``, ``train-judge``, ``bench``, ``demo`` and ``serve``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

DEMO_PROMPTS = [
    "the river runs through the old city",
    "tell me a story about a king and his horse",
    "the river runs through the old city",  # exact repeat: memory hit
    "what is the best way to learn science?",
    "what's the best way to learn science?",  # paraphrase: semantic hit
    "what is the best way to learn music?",  # another subject: the engine answers
]


def _quiet_vllm() -> None:
    # vLLM reads these when first imported; a caller's own values win.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _build(args: argparse.Namespace) -> int:
    from src.tiny_model import build_tiny_model

    path = build_tiny_model(args.dir, seed=args.seed)
    print(f"tiny model written to {path}")
    return 0


def _build_embedding(args: argparse.Namespace) -> int:
    from src.similarity.models import resolve_model

    print(resolve_model(args.name, args.cache_dir))
    return 0


async def _demo(
    model: str, max_model_len: int | None, max_tokens: int, redis_url: str | None
) -> None:
    from vllm import SamplingParams

    from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
    from src.handler.enhanced_llm_factory import create_enhanced_system, get_global_factory

    vllm_config = VLLMConfig(model=model, max_model_len=max_model_len, enforce_eager=True)
    handler = await create_enhanced_system(
        vllm_config=vllm_config,
        cache_config=CacheConfig.model_validate({"redis_url": redis_url}),
        # The tiny model's first token comes before any lookup could finish: hold
        # it up to a second so that the paraphrase below is answered from cache.
        similarity_config=SimilarityConfig(lookup_policy="hold", hold_ms=1000),
        handler_config=HandlerConfig(),
    )
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    try:
        t0 = time.perf_counter()
        await handler.start()
        print(f"engine started in {time.perf_counter() - t0:.1f} s (model {model})\n")
        for prompt in DEMO_PROMPTS:
            collector = await handler.add_request_v2(prompt, params)
            print(f"> {prompt}\n  ", end="", flush=True)
            async for output in collector.get_outputs():
                if output.error:
                    print(f"\n  error: {output.error}")
                    break
                print(output.delta_text, end="", flush=True)
                if output.finished:
                    meta = output.metadata
                    print(
                        f"\n  [{meta['num_tokens']} tokens, {meta['latency_ms']:.1f} ms, "
                        f"finish={output.finish_reason}, cache_hit={meta['cache_hit']}, "
                        f"level={meta['cache_level']}, similarity={meta['similarity']}]\n"
                    )
        collectors = await handler.add_requests_v2(DEMO_PROMPTS, params)
        finals = await asyncio.gather(*(_final(c) for c in collectors))
        print(f"batch of {len(finals)} finished: {[f.finish_reason for f in finals]}\n")
        print("health:", json.dumps(await handler.health_check(), indent=2, default=str))
        print("instances:", json.dumps(get_global_factory().get_instance_stats(), indent=2))
    finally:
        await handler.stop()
        await get_global_factory().cleanup_all()


async def _final(collector):  # type: ignore[no-untyped-def]
    async for output in collector.get_outputs():
        if output.finished:
            return output
    return None


def _build_judge(args: argparse.Namespace) -> int:
    from src.similarity.judge import build_judge, judge_folder

    print(build_judge(args.cache_dir, judge_folder(args.model)))
    return 0


def _train_judge(args: argparse.Namespace) -> int:
    from src.similarity.judge_training import main as train

    return train(args.rest)


def _bench(args: argparse.Namespace) -> int:
    from src.bench import main as bench

    return bench(args.rest)


def _serve(args: argparse.Namespace) -> int:
    from src.server.cli import main as serve

    return serve(args.rest)


def _run_demo(args: argparse.Namespace) -> int:
    from src.tiny_model import ensure_default_tiny_model

    model = args.model
    max_model_len = args.max_model_len
    if model is None:
        model = str(ensure_default_tiny_model())
        max_model_len = max_model_len or 512
    elif not Path(model).is_dir():
        print(f"--model must be a local model folder: {model} is not a directory", file=sys.stderr)
        return 2
    asyncio.run(_demo(model, max_model_len, args.max_tokens, args.redis_url))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build-tiny-model", help="write a tiny random-weight Llama to DIR")
    build.add_argument("dir", type=Path)
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=_build)

    embedding = sub.add_parser(
        "build-embedding-model",
        help="build a packaged embedding model into the model cache (once); print its path",
    )
    embedding.add_argument("--name", default=None, help="default: multilingual-e5-small")
    embedding.add_argument("--cache-dir", type=Path, default=None)
    embedding.set_defaults(func=_build_embedding)

    judge = sub.add_parser(
        "build-judge", help="merge the shipped pair judge into the model cache (once); print it"
    )
    judge.add_argument("--cache-dir", type=Path, default=None)
    judge.add_argument(
        "--model", default="default", help="'default', 'research' or an adapter folder"
    )
    judge.set_defaults(func=_build_judge)

    train = sub.add_parser(
        "train-judge", add_help=False, help="train and calibrate the pair judge (see --help)"
    )
    train.set_defaults(func=_train_judge)

    bench = sub.add_parser(
        "bench", add_help=False, help="plain vLLM against the enhanced system (see --help)"
    )
    bench.set_defaults(func=_bench)

    serve = sub.add_parser(
        "serve",
        add_help=False,
        help="vLLM's OpenAI-compatible server with the cache (vllm serve's options; see --help)",
    )
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="stream a few prompts through the system")
    demo.add_argument("--model", help="local Hugging Face model folder (default: tiny model)")
    demo.add_argument("--max-model-len", type=int, default=None)
    demo.add_argument("--max-tokens", type=int, default=24)
    demo.add_argument("--redis-url", help="also cache in this Redis (default: memory only)")
    demo.set_defaults(func=_run_demo)

    # train-judge, bench and serve have parsers of their own: what follows is theirs.
    args, rest = parser.parse_known_args(argv)
    if args.command not in ("train-judge", "bench", "serve") and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    if args.command != "serve":  # a server logs and sizes itself as `vllm serve` does
        _quiet_vllm()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
