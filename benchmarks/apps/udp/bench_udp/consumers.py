"""The echo consumer the UDP benchmark measures."""


async def echo(message):
    """Send the datagram back to its client."""
    await message.reply_channel.send({"data": message["data"]})
