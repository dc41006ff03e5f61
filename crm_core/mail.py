"""Sending email through the SMTP server of ``CRM_SMTP_URL`` (smtp://user:password@host:port,
or smtps:// for TLS from the first byte; smtp:// upgrades with STARTTLS when the server
offers it). Called from background jobs only, never while a request waits.

Header values never carry CR or LF from data: a name or address with a line break is
flattened to one line before it reaches a header (the classic header injection)."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import unquote, urlparse

LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
TIMEOUT = 30


def one_line(value):
    """A header value with every line break turned into a space."""
    return LINE_BREAKS.sub(" ", str(value or "")).strip()


def build_message(sender, to_address, subject, text, to_name=None, html=None, language=None):
    message = EmailMessage()
    message["From"] = one_line(sender)
    message["To"] = formataddr((one_line(to_name), one_line(to_address))) if to_name else one_line(to_address)
    message["Subject"] = one_line(subject)
    message["Message-ID"] = make_msgid(domain=one_line(sender).rpartition("@")[2] or None)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    if language:  # after the content: set_content drops Content-* headers
        message["Content-Language"] = one_line(language).replace("_", "-")
    return message


def send(smtp_url, message):
    """Deliver ``message``; raises ``smtplib.SMTPException`` or ``OSError`` on failure."""
    url = urlparse(smtp_url)
    host, port = url.hostname or "localhost", url.port
    if url.scheme == "smtps":
        server = smtplib.SMTP_SSL(host, port or 465, timeout=TIMEOUT, context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(host, port or 25, timeout=TIMEOUT)
    with server:
        if url.scheme == "smtp":
            server.ehlo()
            if server.has_extn("starttls"):
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
        if url.username:
            server.login(unquote(url.username), unquote(url.password or ""))
        server.send_message(message)
