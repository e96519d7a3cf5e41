"""An SMTP server on loopback that keeps (and optionally prints or refuses) what it receives."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from . import free_port


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """The parsed message."""
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.refuse:
            return self.sink.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        with self.sink.lock:
            self.sink.messages.append(received)
        if self.sink.echo:
            msg = received.message
            print(
                f"--- mail from {received.mail_from} to {', '.join(received.rcpt_tos)}: "
                f"{msg['Subject']}",
                flush=True,
            )
        return "250 Message accepted"


class SmtpSink:
    """Start with .start(); `.messages` fills as mail arrives; set `.refuse` to an SMTP reply
    such as '451 Try later' or '550 No such user' to turn every recipient away."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, echo: bool = False) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.echo = echo
        self.refuse: str | None = None
        self.delay = 0.0  # seconds before accepting each message (a slow server)
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname=host, port=self.port)

    @property
    def url(self) -> str:
        """A MAIL_URL that points here."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SmtpSink:
        """Listen in a background thread."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()
