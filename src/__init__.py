"""Enhanced vLLM: an in-process response cache and semantic lookup around vLLM's AsyncLLM.

The import root is ``src``: ``from src.handler.enhanced_llm_factory import
create_enhanced_system``. Subpackages: ``config`` (settings), ``handler``
(engine, handler, factory), ``cache``, ``nlp`` and ``similarity``.
"""

__all__: list[str] = []
