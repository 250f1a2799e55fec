"""wflo as the governance layer of agent frameworks: pydantic-ai, LiteLLM, LangChain.

Each integration lives in its own module, imported only when used, and needs its
framework installed as an extra of ``wflo-prefect``:

* :mod:`wflo_prefect.integrations.pydantic_ai` (``wflo-prefect[pydantic-ai]``):
  :class:`~wflo_prefect.integrations.pydantic_ai.WfloModel` prices and holds every
  model request against wflo budgets before it is sent, and
  :func:`~wflo_prefect.integrations.pydantic_ai.run_with_approvals` answers tools
  declared with ``requires_approval=True`` through wflo approval gates;
* :mod:`wflo_prefect.integrations.litellm` (``wflo-prefect[litellm]``): metered
  ``completion`` / ``acompletion``;
* :mod:`wflo_prefect.integrations.langchain` (``wflo-prefect[langchain]``): a
  callback handler for LangChain chat models.

The OpenAI Agents SDK needs no integration: give it an instrumented client
(``set_default_openai_client(instrument(AsyncOpenAI()))``), see docs/integrations.
"""
