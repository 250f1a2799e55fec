"""The typed form a paused run shows in the Prefect UI, and the answer it yields.

Prefect's UIs (the default one and the "V2 UI", 3.8) build the Resume dialog
from the form's JSON schema: an ``enum`` (a ``Literal`` or an ``Enum``) is a
select with no preselected value, a ``str`` a text area, a ``bool`` a toggle
(off by default, so it cannot tell "no" from "not answered"), a single-value
``Literal`` (``const``) an empty disabled-looking text area, and ``readOnly`` is
ignored. Fields listed in ``required`` lose their "(Optional)" label, and the
server refuses a resume whose input does not validate against the schema, so
both UIs show the refusal on the page. Hence:

- ``decision``: a required select, approve or reject, with no default;
- ``approver``: a required select of the request's approvers when they are
  listed, a required text otherwise (open gates);
- ``code``: the approver's one-time code or API key, required when names are
  proven (the open-source UI has no user identity);
- no digest field: the form belongs to one pause of one request (its input
  keyset), so the answer is bound to that request's digest, which the
  description shows read-only.

wflo deletes the submitted answer from Prefect's run input as soon as it has read it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, Literal

from prefect.input import Keyset, RunInput
from pydantic import Field, ValidationError, create_model

from wflo_prefect.approvals.decisions import MAX_UI_PROOF_FAILURES
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = [
    "ApprovalForm",
    "ApprovalInput",
    "Decision",
    "answer_fields",
    "approval_form",
    "render_details",
    "render_markdown",
    "ways_to_answer",
]

Decision = Literal["approve", "reject"]

_DECISION_HELP = "Approve or reject what is described above (no default: choose one)."
_COMMENT_HELP = "Why (optional; kept in the audit log)."
_CODE_HELP = "Your one-time code (from your e-mail notification) or one of your API keys."


class ApprovalInput(RunInput):
    """One approver's answer from the Prefect UI form, as wflo reads and verifies it."""

    decision: Decision = Field(description=_DECISION_HELP)
    approver: str = Field(description="The approver answering.")
    code: str = Field(default="", description=_CODE_HELP)
    comment: str = Field(default="", description=_COMMENT_HELP)

    @property
    def approved(self) -> bool:
        """True for ``decision="approve"``."""
        return self.decision == "approve"


class ApprovalForm(RunInput):
    """Base of the per-request forms :func:`approval_form` builds."""

    @classmethod
    def load(cls, keyset: Keyset, flow_run_id: Any = None) -> Any:
        # suspend_flow_run loads the answer with the form class when the run comes
        # back. wflo itself resumes settled requests with an answer that need not fit
        # this request's select (a timeout has no approver), and the gate reads the
        # ledger then, not the answer; so a non-fitting answer loads as an empty form.
        try:
            return super().load(keyset, flow_run_id=flow_run_id)
        except ValidationError:
            return cls.model_construct()


def answer_fields(value: Mapping[str, Any] | RunInput | None) -> dict[str, Any] | None:
    """The answer's fields as plain values (a form instance or the stored dict)."""
    if value is None:
        return None
    if isinstance(value, RunInput):
        plain = {k: v for k, v in value.__dict__.items() if k in type(value).model_fields}
    else:
        plain = dict(value)
    cleaned = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in plain.items()}
    return cleaned or None


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def ways_to_answer(request: ApprovalRequestRecord) -> list[str]:
    """Every way to answer ``request``, as markdown bullet lines."""
    proven = request.policy.proven
    cli = f"wflo approvals approve {request.id} --as <your name>"
    return [
        "- **Prefect UI**: the run's **Resume** button (V2 UI: the run's ⋮ menu, *Resume*); "
        "choose approve or reject, "
        + ("pick your name, enter your one-time code." if proven else "type your name."),
        "- **Slack**: the Approve / Reject buttons of the message, if you were notified there.",
        "- **E-mail**: your own approve / reject link, if you were notified there.",
        f"- **CLI**: `{cli}{' --api-key <your key>' if proven else ''}` (or `reject`).",
        f"- **REST API**: `POST /api/approvals/{request.id}/decision` with your `X-API-Key`.",
    ]


def render_details(request: ApprovalRequestRecord) -> list[str]:
    """Markdown lines: the details table, approvers, quorum, deadline, request id, digest."""
    lines: list[str] = []
    if request.details:
        lines += ["| detail | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in request.details.items()]
        lines.append("")
    who = ", ".join(map(str, request.approvers)) or "anyone"
    facts = [f"**Approvers:** {who}", f"**quorum:** {request.quorum}"]
    if request.requested_by:
        facts.append(f"**requested by:** {request.requested_by}")
    if request.deadline_at:
        facts.append(f"**deadline:** {request.deadline_at.strftime('%Y-%m-%d %H:%M UTC')}")
    return [
        *lines,
        " · ".join(facts),
        "",
        f"Request `{request.id}` · digest `{request.digest}`",
    ]


def render_markdown(request: ApprovalRequestRecord) -> str:
    """The form's description: the request, then what to fill in."""
    lines = [f"## Approval needed: {request.action}", "", *render_details(request), ""]
    if request.policy.proven:
        lines += [
            "Choose **approve** or **reject**, pick your name and enter your one-time code "
            "(or API key), then submit. Your answer is bound to the digest above and counts "
            "only with your own code or key. "
            f"After {MAX_UI_PROOF_FAILURES} wrong ones, form answers under your name are "
            "locked for this request. A refused answer is explained in this run's logs.",
        ]
    else:
        lines += [
            "Choose **approve** or **reject**, type your name, then submit. Your answer is "
            "bound to the digest above.",
            "",
            "**Open gate: names are not verified.** Anyone who can resume this run may "
            "answer; the name typed is recorded as given.",
        ]
    return "\n".join(lines)


def approval_form(request: ApprovalRequestRecord) -> type[ApprovalForm]:
    """The form to pause with for ``request``: its fields and its description."""
    fields: dict[str, Any] = {"decision": (Decision, Field(description=_DECISION_HELP))}
    names = [str(n) for n in request.approvers]
    if names:
        # An Enum (not a Literal): one name would be a JSON-schema `const`, which
        # the UI shows as an empty text area instead of a select.
        choices = enum.Enum("Approver", {f"n{i}": n for i, n in enumerate(names)}, type=str)  # type: ignore[misc]
        fields["approver"] = (choices, Field(description="Who you are (a listed approver)."))
    else:
        fields["approver"] = (str, Field(description="Your name (as recorded)."))
    if request.policy.proven:
        fields["code"] = (str, Field(description=_CODE_HELP))
    fields["comment"] = (str, Field(default="", description=_COMMENT_HELP))
    form: type[ApprovalForm] = create_model("ApprovalForm", __base__=ApprovalForm, **fields)
    form.__doc__ = f"Answer to approval request {request.id}."
    return form.with_initial_data(description=render_markdown(request))
