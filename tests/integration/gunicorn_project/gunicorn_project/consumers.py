"""A consumer that tells which process answered."""

import os


def pid(message):
    """Answer with the worker process's id."""
    message.reply_channel.send({"status": 200, "content": str(os.getpid()).encode()})
