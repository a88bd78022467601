"""The thin Twisted adapter: a connection's questions to ``server.request``, answers back.

Each connection answers its questions in the order they came, one at a time: the answer to a
question is the first reply of the consumer it was routed to, or a line saying why there is
none. Every answer still owed is work in flight, so a SIGTERM lets it reach the client
before the process exits (within ``channels serve --drain-timeout``).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from twisted.internet.protocol import Factory, Protocol

from channels_core.exceptions import EventRefused, NoRoute, ReplyTimeout
from channels_core.transport import write

from .parser import LineTooLong, Question, QuestionParser, answer_line

logger = logging.getLogger(__name__)

REQUEST = "ask.request"
REPLY_PREFIX = "ask.reply"

# What the client reads when no consumer answers, by why (SMTP answers 451 when busy).
BUSY = "BUSY try again later"
TIMEOUT = "TIMEOUT"
NO_CONSUMER = "NO CONSUMER"
FAILED = "ERROR the consumer failed"


def _address(address: Any) -> list:
    return [address.host, address.port]


class AskProtocol(Protocol):
    """One TCP connection: each line is an ``ask.request``, each answer a line back."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.parser = QuestionParser(server.option("ask", "max_line_length"))
        self.timeout = server.option("ask", "reply_timeout")
        self.waiting: deque[Question] = deque()
        self.answering = False
        self.order = 0

    def connectionMade(self) -> None:
        """Note both ends of the connection, for the events."""
        self.client = _address(self.transport.getPeer())
        self.local = _address(self.transport.getHost())

    def dataReceived(self, data: bytes) -> None:
        """Parse; queue the questions; start answering unless already at it."""
        try:
            questions = self.parser.feed(data)
        except LineTooLong as error:
            write(self.transport, f"ERROR {error}\n".encode())
            self.transport.loseConnection()
            return
        self.waiting.extend(questions)
        if self.waiting and not self.answering:
            self.answering = True
            self.server.spawn(self._answer_waiting())

    async def _answer_waiting(self) -> None:
        """Answer the queued questions in order; draining waits until they are answered."""
        try:
            with self.server.hold():
                while self.waiting:
                    answer = await self._ask(self.waiting.popleft())
                    write(self.transport, answer_line(answer))
        finally:
            self.answering = False

    async def _ask(self, question: Question) -> str:
        """The consumer's answer to *question*, or the line that says why there is none."""
        content = {
            "question": question.text,
            "client": self.client,
            "server": self.local,
            "order": self.order,
        }
        self.order += 1
        try:
            reply = await self.server.request(
                REQUEST, content, reply_prefix=REPLY_PREFIX, timeout=self.timeout
            )
        except EventRefused as error:
            logger.warning("The layer refused a question (%s); answering %r.", error, BUSY)
            return BUSY
        except ReplyTimeout:
            return TIMEOUT
        except NoRoute:
            return NO_CONSUMER
        except Exception:
            logger.exception("The consumer of %r raised; answering %r.", question.text, FAILED)
            return FAILED
        return str(reply.get("answer", ""))

    def connectionLost(self, reason: Any = None) -> None:
        """Nobody is left to read the answers: drop the questions not yet asked."""
        self.waiting.clear()


class AskFactory(Factory):
    """Builds an :class:`AskProtocol` per connection, all sharing the server."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def buildProtocol(self, addr: Any) -> AskProtocol:
        """A protocol for the new connection."""
        return AskProtocol(self.server)
