"""pydantic-ai under wflo: budgets on every model request, tool approvals through wflo gates.

Needs ``pip install 'wflo-prefect[pydantic-ai]'``. Two pieces, public pydantic-ai
API only:

* :class:`WfloModel` wraps any pydantic-ai ``Model`` (a ``WrapperModel``): before
  each request its worst case (input estimated from the messages and tool
  definitions, plus the request's ``max_tokens`` or wflo's default) is held on the
  active wflo budgets, so a ``halt`` budget raises :class:`~wflo_prefect.BudgetExceeded`
  and nothing is sent; the usage the provider reports is settled, attributed to the
  Prefect flow/task run the request runs in. Works with a plain ``Agent`` inside a
  governed flow and with ``PrefectAgent`` (each model request is then a Prefect task).
* :func:`run_with_approvals` runs an agent whose tools are declared with
  ``requires_approval=True``: each tool call the model makes becomes a wflo
  approval gate (Slack, e-mail, links, the Prefect UI, the CLI), with the tool's
  name and arguments as the request's details and digest; the run continues with
  pydantic-ai's ``DeferredToolResults``, and a rejected call reaches the model as
  a ``ToolDenied`` with the approver's comment.

Holds and settles run in wflo's worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from wflo_prefect.integrations._common import estimate_input_tokens, max_output_tokens, require

require("pydantic_ai", "pydantic-ai")

from pydantic_ai import DeferredToolRequests, DeferredToolResults, ToolDenied  # noqa: E402
from pydantic_ai.models import Model  # noqa: E402
from pydantic_ai.models.wrapper import WrapperModel  # noqa: E402

from wflo_prefect._offload import run_off_loop  # noqa: E402
from wflo_prefect.approvals.errors import ApprovalRejected  # noqa: E402
from wflo_prefect.approvals.policy import ApprovalPolicy  # noqa: E402
from wflo_prefect.costs.metering import MeteredCall, start_call  # noqa: E402

if TYPE_CHECKING:
    from pydantic_ai.agent import AbstractAgent
    from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
    from pydantic_ai.models import ModelRequestParameters, StreamedResponse
    from pydantic_ai.run import AgentRunResult
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.tools import RunContext
    from pydantic_ai.usage import RequestUsage

__all__ = ["WfloModel", "provider_of", "run_with_approvals", "tool_approval_details"]

# pydantic-ai's `Model.system` names where genai-prices (and wflo) name providers otherwise.
_PROVIDERS = {
    "google-gla": "google",
    "google-vertex": "google-vertex",
    "google-cloud": "google-vertex",
    "bedrock": "aws",
    "xai": "x-ai",
    "azure": "azure",
}


def provider_of(model: Model) -> str:
    """The wflo price provider of a pydantic-ai model (``model.system``, mapped).

    A Google model is priced by where its google-genai client sends requests:
    ``google-vertex`` for a Vertex AI client, ``google`` for the Gemini API (the
    provider's name can disagree with its client when one is passed in).
    """
    system = model.system
    if system.startswith("google"):
        vertex = getattr(getattr(model, "client", None), "vertexai", None)
        if isinstance(vertex, bool):
            return "google-vertex" if vertex else "google"
    return _PROVIDERS.get(system, system)


def _request_text(
    messages: Sequence[ModelMessage], parameters: ModelRequestParameters | None
) -> list[Any]:
    text: list[Any] = []
    for message in messages:
        instructions = getattr(message, "instructions", None)
        if instructions:
            text.append(instructions)
        for part in message.parts:
            for name in ("content", "args"):
                value = getattr(part, name, None)
                if isinstance(value, (str, Mapping, list)):
                    text.append(value)
    if parameters is not None:
        for tool in [*parameters.function_tools, *parameters.output_tools]:
            text.extend([tool.name, tool.description or "", tool.parameters_json_schema])
    return text


class WfloModel(WrapperModel):
    """A pydantic-ai model whose requests are priced and held on wflo budgets first.

    ``WfloModel(OpenAIChatModel("gpt-4o-mini"))``, or a model name pydantic-ai
    knows (``WfloModel("openai:gpt-4o-mini")``). Do not also give its provider an
    ``instrument()``-ed client: the request would be counted twice.

    Args:
        wrapped: the model to govern.
        provider: the price provider (default from ``model.system``), e.g. when an
            OpenAI-compatible endpoint serves another vendor's model.
    """

    def __init__(self, wrapped: Model | str, *, provider: str | None = None) -> None:
        super().__init__(wrapped)  # type: ignore[arg-type]
        self._wflo_provider = provider

    @property
    def price_provider(self) -> str:
        """The provider requests are priced as."""
        return self._wflo_provider or provider_of(self.wrapped)

    async def _hold(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        parameters: ModelRequestParameters,
    ) -> MeteredCall:
        settings: Mapping[str, Any] = model_settings or {}
        limit = max_output_tokens(settings.get("max_tokens"))
        provider, model = self.price_provider, self.wrapped.model_name
        text = _request_text(messages, parameters)

        def start() -> MeteredCall:
            # Counting the input may load a tokenizer: off the event loop, with the hold.
            return start_call(
                provider,
                model,
                input_tokens=estimate_input_tokens(text, provider, model),
                max_output_tokens=limit,
            )

        return await run_off_loop(start)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """Hold the worst case, send, settle the reported usage (release on error)."""
        call = await self._hold(messages, model_settings, model_request_parameters)
        try:
            response = await self.wrapped.request(
                messages, model_settings, model_request_parameters
            )
            await _settle(call, response.usage, response.model_name, response.provider_response_id)
            return response
        finally:
            if not call.closed:
                await run_off_loop(call.release)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        """A streamed request: held first, settled with the stream's usage when it ends."""
        call = await self._hold(messages, model_settings, model_request_parameters)
        try:
            async with self.wrapped.request_stream(
                messages, model_settings, model_request_parameters, run_context
            ) as stream:
                yield stream
                await _settle(call, stream.usage, stream.model_name, stream.provider_response_id)
        finally:
            if not call.closed:
                await run_off_loop(call.release)


async def _settle(
    call: MeteredCall, usage: RequestUsage, model: str | None, request_id: str | None
) -> None:
    if not usage.input_tokens and not usage.output_tokens:
        await run_off_loop(call.settle_worst_case, request_id=request_id)
        return
    await run_off_loop(
        call.settle,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        model=model,
        request_id=request_id,
    )


def tool_approval_details(call: ToolCallPart) -> dict[str, Any]:
    """The approval request's details for one tool call: the tool's name and arguments."""
    return {"tool": call.tool_name, "args": call.args_as_dict()}


async def _decide(call: ToolCallPart, policy: ApprovalPolicy) -> bool | ToolDenied:
    from wflo_prefect.approvals.async_gate import arun_gate

    action = policy.action or f"call tool {call.tool_name}"
    try:
        await arun_gate(action, tool_approval_details(call), policy)
    except ApprovalRejected as exc:
        decision = exc.decision
        who = ", ".join(decision.approvers) or "nobody"
        reason = "; ".join(c for c in decision.comments.values() if c) if decision.comments else ""
        message = f"The call of {call.tool_name} was denied by {who}"
        return ToolDenied(f"{message}: {reason}" if reason else message)
    return True


async def run_with_approvals(
    agent: AbstractAgent[Any, Any],
    user_prompt: str | None = None,
    *,
    approval: ApprovalPolicy | None = None,
    max_rounds: int = 10,
    **run_kwargs: Any,
) -> AgentRunResult[Any]:
    """Run ``agent``; answer its approval-requiring tool calls through wflo gates.

    The agent's ``output_type`` must include ``DeferredToolRequests`` (pydantic-ai's
    rule for ``requires_approval=True`` tools). All calls of one model turn wait for
    their decisions at once; approved calls run, rejected ones reach the model as
    denials, and the agent goes on. Must run inside a Prefect flow (the gates pause
    or wait in its run). Tool calls deferred for *external* execution are not wflo's:
    a result still holding such calls is returned as is.

    Args:
        agent: a pydantic-ai ``Agent`` or ``PrefectAgent``.
        user_prompt: the prompt of the first run.
        approval: the gate's policy (approvers, timeout, channels...); default an
            ``ApprovalPolicy()``. Its ``action`` defaults to ``"call tool NAME"``.
        max_rounds: most approval rounds before giving up (a model that keeps
            asking is stopped with ``InvalidArgumentError``).
        **run_kwargs: passed to every ``agent.run`` (``deps``, ``message_history``...).
    """
    import asyncio

    from wflo_prefect.errors import InvalidArgumentError

    policy = approval or ApprovalPolicy()
    result = await agent.run(user_prompt, **run_kwargs)
    run_kwargs.pop("message_history", None)
    for _ in range(max_rounds):
        requests = result.output
        if not isinstance(requests, DeferredToolRequests) or requests.calls:
            return result
        if not requests.approvals:
            return result
        answers = await asyncio.gather(*(_decide(c, policy) for c in requests.approvals))
        results = DeferredToolResults(
            approvals={c.tool_call_id: a for c, a in zip(requests.approvals, answers, strict=True)}
        )
        result = await agent.run(
            message_history=result.all_messages(), deferred_tool_results=results, **run_kwargs
        )
    raise InvalidArgumentError(
        f"The agent still asked for tool approvals after {max_rounds} rounds",
        value=max_rounds,
        hint="Raise max_rounds= or check the agent's instructions",
        docs="integrations/pydantic-ai.md",
    )
