"""A small HTML rendering of Slack Block Kit blocks, for pictures of what wflo posts.

Slack's own client cannot be reached from the tests, so this draws the blocks a
``chat.postMessage`` carried: header, section (mrkdwn or plain text, and
fields), context, and actions with buttons (``primary`` green, ``danger`` red).
It covers only what wflo's approval message uses and says so for anything else.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["blocks_to_html", "mrkdwn_to_html"]

_CSS = """
body { margin: 0; background: #fff; font: 15px/1.46 -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; color: #1d1c1d; }
.message { display: inline-block; padding: 12px 20px 14px 20px; max-width: 680px; }
.sender { font-weight: 900; margin-bottom: 2px; }
.sender .app { font-size: 10px; font-weight: 700; color: #616061; background: #e8e8e8;
  border-radius: 2px; padding: 1px 3px; margin-left: 4px; vertical-align: 2px; }
.header { font-size: 18px; font-weight: 900; margin: 4px 0; }
.section { margin: 4px 0; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 16px; margin-top: 4px; }
.context { font-size: 12px; color: #616061; margin: 6px 0; }
code { font: 12px Monaco, Menlo, Consolas, monospace; color: #e01e5a; background: #f6f6f6;
  border: 1px solid #e1e1e1; border-radius: 3px; padding: 1px 3px; }
.mention { color: #1264a3; background: #e8f5fa; border-radius: 3px; padding: 0 2px; }
.actions { margin: 8px 0 2px 0; }
.button { display: inline-block; font-size: 15px; font-weight: 700; padding: 3px 12px;
  margin-right: 8px; border-radius: 4px; border: 1px solid #bbbabb; color: #1d1c1d;
  background: #fff; }
.button.primary { background: #007a5a; border-color: #007a5a; color: #fff; }
.button.danger { background: #e01e5a; border-color: #e01e5a; color: #fff; }
"""


def mrkdwn_to_html(text: str) -> str:
    """Slack mrkdwn to HTML: `code`, *bold*, _italic_, <@U123> mentions, line breaks."""
    out = html.escape(text, quote=False)
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(spans) - 1}\x00"

    out = re.sub(r"`([^`\n]+)`", keep, out)
    out = re.sub(r"&lt;@([A-Z0-9]+)&gt;", r'<span class="mention">@\1</span>', out)
    out = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"<i>\1</i>", out)
    out = re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], out)
    return out.replace("\n", "<br>")


def _text(obj: dict[str, Any]) -> str:
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_html(str(obj["text"]))
    return html.escape(str(obj["text"]), quote=False)


def _block(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "header":
        return f'<div class="header">{_text(block["text"])}</div>'
    if kind == "section":
        parts = [_text(block["text"])] if "text" in block else []
        if block.get("fields"):
            cells = "".join(f"<div>{_text(f)}</div>" for f in block["fields"])
            parts.append(f'<div class="fields">{cells}</div>')
        return f'<div class="section">{"".join(parts)}</div>'
    if kind == "context":
        items = " ".join(_text(e) for e in block["elements"] if "text" in e)
        return f'<div class="context">{items}</div>'
    if kind == "actions":
        buttons = []
        for element in block["elements"]:
            if element["type"] != "button":
                raise ValueError(f"the renderer draws buttons only, not {element['type']!r}")
            style = html.escape(str(element.get("style", "")))
            value = html.escape(str(element.get("value", "")))
            action = html.escape(str(element["action_id"]))
            buttons.append(
                f'<span class="button {style}" role="button" data-action-id="{action}" '
                f'data-value="{value}">{_text(element["text"])}</span>'
            )
        return f'<div class="actions">{"".join(buttons)}</div>'
    raise ValueError(f"the renderer does not draw {kind!r} blocks")


def blocks_to_html(blocks: list[dict[str, Any]], *, sender: str = "wflo") -> str:
    """A whole HTML page showing ``blocks`` as one message from ``sender``."""
    body = "".join(_block(b) for b in blocks)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{_CSS}</style></head>"
        f'<body><div class="message"><div class="sender">{html.escape(sender)}'
        f'<span class="app">APP</span></div>{body}</div></body></html>'
    )
