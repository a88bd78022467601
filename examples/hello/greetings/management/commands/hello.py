"""``manage.py hello NAME...``: a worker on the memory layer answers each name."""

import asyncio

from django.core.management.base import BaseCommand

from channels_core import Channel, Group, get_channel_layer, new_channel
from channels_core.worker import Worker


class Command(BaseCommand):
    """Start a worker in this process, send it one ``hello`` message per name, print replies."""

    help = "Start a worker on the memory layer, send it greetings and print its replies."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="+", help="names to greet")

    def handle(self, *args, names, **options):
        asyncio.run(self.greet(names))

    async def greet(self, names):
        worker = Worker()
        running = asyncio.create_task(worker.run())
        reply = await new_channel("hello.reply")
        for name in names:
            await Channel("hello").send({"name": name, "reply_channel": reply.name})
        layer = get_channel_layer()
        for _ in names:
            message = await asyncio.wait_for(layer.receive(reply.name), timeout=10)
            self.stdout.write(message["text"])
        await Group("greeted").send({"text": "Goodbye!"})
        message = await asyncio.wait_for(layer.receive(reply.name), timeout=10)
        self.stdout.write(message["text"])
        worker.stop()
        await running
