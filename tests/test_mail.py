"""Sending mail: a real SMTP server on loopback (aiosmtpd), with authentication, and header
values that can never carry a line break from data."""

import email
import email.policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from crm_core import mail
from crm_core.testing import free_port


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((session.authenticated, envelope.rcpt_tos,
                              email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"crm", b"s3cr@t")
    return AuthResult(success=ok)


@pytest.fixture
def server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def test_a_message_is_delivered_with_login(server):
    message = mail.build_message("crm@example.com", "lan@example.com", "Xin chào", "Nội dung\n", to_name="Lan")
    mail.send(f"smtp://crm:s3cr%40t@127.0.0.1:{server.port}", message)
    (authenticated, rcpts, received), = server.messages
    assert authenticated and rcpts == ["lan@example.com"]
    assert received["Subject"] == "Xin chào" and received.get_content().replace("\r\n", "\n") == "Nội dung\n"


@pytest.mark.parametrize("evil", ["Lan\r\nBcc: victim@example.com", "Lan\nSubject: hi", "Lan\u2028X: y"])
def test_no_line_break_from_data_reaches_a_header(evil):
    message = mail.build_message("crm@example.com", "lan@example.com", evil, "body", to_name=evil)
    raw = message.as_bytes()
    headers = raw.split(b"\n\n", 1)[0].decode()
    assert not any(line.startswith(("Bcc", "X:")) for line in headers.splitlines())
    assert all(("\r" not in v and "\n" not in v) for v in (message["To"], message["Subject"]))


def test_one_line_flattens_every_kind_of_break():
    assert mail.one_line("a\r\nb\nc\rd\u2028e") == "a b c d e"
