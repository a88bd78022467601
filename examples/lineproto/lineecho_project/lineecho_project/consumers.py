"""Consumers of the lineecho test project."""

from channels_core import Group


async def echo(message):
    """Reply with the line upper-cased; ``bye`` closes the connection."""
    line = message["line"]
    if line == "bye":
        await message.reply_channel.send({"line": "BYE", "close": True})
        return
    await message.reply_channel.send({"line": line.upper()})


def join(message, room):
    """A sync consumer: join a group, so later ``say`` lines reach this connection."""
    Group(room).add(message.reply_channel)
    message.reply_channel.send({"line": f"JOINED {room}"})


async def say(message, room, text):
    """Send *text* to every connection in the group, through the layer."""
    await Group(room).send({"line": f"{room}: {text}"})
