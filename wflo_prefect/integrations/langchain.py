"""LangChain chat models under wflo budgets: a callback handler.

Needs ``pip install 'wflo-prefect[langchain]'``. Give the handler to any chat model
(``langchain-core``'s ``BaseChatModel``: ChatOpenAI, ChatAnthropic...)::

    from wflo_prefect.integrations.langchain import WfloCallbackHandler

    llm = ChatOpenAI(model="gpt-4o-mini", callbacks=[WfloCallbackHandler()])
    # or per call: llm.invoke(prompt, config={"callbacks": [WfloCallbackHandler()]})

When the model starts, the call's worst case (input estimated from the messages
and tools, plus the model's ``max_tokens`` or wflo's default) is held on the active
wflo budgets; over a ``halt`` budget the handler raises
:class:`~wflo_prefect.BudgetExceeded` and LangChain sends nothing (the handler sets
``raise_error``). When the model ends, the usage it reports (``usage_metadata``) is
settled; an error releases the hold. The provider and model come from the
standard LangSmith parameters every chat model reports (``ls_provider``,
``ls_model_name``, ``ls_max_tokens``). In ``ainvoke``/``astream`` LangChain runs
this (sync) handler in a worker thread, in a copy of the caller's context, so the
event loop is not blocked and the call is attributed to the Prefect run.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from wflo_prefect.integrations._common import estimate_input_tokens, max_output_tokens, require

require("langchain_core", "langchain")

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.messages import BaseMessage  # noqa: E402
from langchain_core.outputs import LLMResult  # noqa: E402

from wflo_prefect.costs.clients._usage import as_int, field  # noqa: E402
from wflo_prefect.costs.metering import MeteredCall, start_call  # noqa: E402
from wflo_prefect.errors import InvalidArgumentError  # noqa: E402

__all__ = ["WfloCallbackHandler"]

# LangChain's `ls_provider` names where genai-prices (and wflo) name providers otherwise.
_PROVIDERS = {
    "google_genai": "google",
    "google_vertexai": "google-vertex",
    "google_anthropic_vertex": "anthropic",
    "bedrock": "aws",
    "amazon_bedrock": "aws",
    "mistralai": "mistral",
    "xai": "x-ai",
    "fireworks": "fireworks",
}


class WfloCallbackHandler(BaseCallbackHandler):
    """Holds each chat model call on wflo budgets before it is sent; settles its usage.

    Args:
        provider: the price provider, when the model's ``ls_provider`` is not the
            one wflo should price it as (e.g. an OpenAI-compatible endpoint).
        model: the model name to price, when the chat model reports none.
    """

    #: Let a refused hold (BudgetExceeded) stop the call instead of being logged.
    raise_error: bool = True

    def __init__(self, *, provider: str | None = None, model: str | None = None) -> None:
        super().__init__()
        self._provider = provider
        self._model = model
        self._calls: dict[UUID, MeteredCall] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Hold the call's worst case (raises BudgetExceeded: the call is not sent)."""
        meta: Mapping[str, Any] = metadata or {}
        params: Mapping[str, Any] = kwargs.get("invocation_params") or {}
        provider = self._provider or meta.get("ls_provider")
        model = (
            self._model
            or meta.get("ls_model_name")
            or params.get("model")
            or params.get("model_name")
        )
        if not provider or not model:
            raise InvalidArgumentError(
                "The chat model reports no provider/model (ls_provider, ls_model_name), "
                "so wflo cannot price its calls",
                value=serialized.get("id") if isinstance(serialized, dict) else None,
                hint="Pass WfloCallbackHandler(provider=..., model=...)",
                docs="integrations/langchain.md",
            )
        text: list[Any] = [[m.content for m in batch] for batch in messages]
        tools = params.get("tools")
        if isinstance(tools, Sequence):
            text.append(list(tools))
        limit = meta.get("ls_max_tokens") or params.get("max_tokens")
        price_provider = _PROVIDERS.get(str(provider), str(provider))
        call = start_call(
            price_provider,
            str(model),
            input_tokens=estimate_input_tokens(text, price_provider, str(model)),
            max_output_tokens=max_output_tokens(limit),
        )
        with self._lock:
            self._calls[run_id] = call

    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> Any:
        """Settle the usage the model reported (its worst case when it reported none)."""
        with self._lock:
            call = self._calls.pop(run_id, None)
        if call is None:
            return
        message = None
        if response.generations and response.generations[0]:
            message = getattr(response.generations[0][0], "message", None)
        usage = getattr(message, "usage_metadata", None)
        metadata: Mapping[str, Any] = getattr(message, "response_metadata", None) or {}
        output: Mapping[str, Any] = response.llm_output or {}
        request_id = metadata.get("id") or output.get("id")
        request_id = request_id if isinstance(request_id, str) else None
        if not usage:
            call.settle_worst_case(request_id=request_id)
            return
        model = metadata.get("model_name") or output.get("model_name")
        call.settle(
            input_tokens=as_int(field(usage, "input_tokens")),
            output_tokens=as_int(field(usage, "output_tokens")),
            cached_input_tokens=as_int(field(usage, "input_token_details", "cache_read")),
            model=model if isinstance(model, str) and model else None,
            request_id=request_id,
        )

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """The call failed: give its hold back."""
        with self._lock:
            call = self._calls.pop(run_id, None)
        if call is not None and not call.closed:
            call.release()
