"""Consumers of the SMS test project: record every event in $SMS_DATA, answer some texts."""

import json
import os
from pathlib import Path

from channels_core import Channel

# What a text asks the consumer to send back instead of an echo.
REPLIES = {
    "send bytes": {"text": b"\xff\xfe"},
    "send to a bad number": {"to": "call me maybe", "text": "hi"},
    "send nothing": {"text": None},
}


def record(name: str, content: dict) -> None:
    """Append *content* as one JSON line to $SMS_DATA/<name>.jsonl, in one write."""
    line = json.dumps(content, ensure_ascii=True) + "\n"
    path = Path(os.environ["SMS_DATA"]) / f"{name}.jsonl"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def receive(message):
    """Record the SMS, then echo it to its sender (or send what the text asks for)."""
    content = dict(message.content)
    record("receive", content)
    if content["text"].startswith("quiet"):
        return
    reply = {
        "to": content["from"],
        "text": "echo: " + content["text"],
        "id": f"re {content['text'][:20]}",
    }
    reply.update(REPLIES.get(content["text"], {}))
    if reply.get("text") is None:
        del reply["text"]
    Channel("sms.send").send(reply)


def status(message):
    """Record what became of a text sent."""
    record("status", dict(message.content))
