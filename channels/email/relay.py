"""The SMTP relay our replies go out through: one reused aiosmtplib connection."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from email.message import Message

import aiosmtplib

from channels.base import PermanentDeliveryError, TransientDeliveryError
from channels.email.settings import RelaySettings

__all__ = ["Relay"]


class Relay:
    """Sends mail one at a time over a connection kept open between mails; a
    connection the relay closed meanwhile is opened again once."""

    def __init__(self, settings: RelaySettings) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        # The last failure to reach the relay ("" once a mail went through): health.
        self.last_error = ""

    async def send(self, mail: Message) -> None:
        """Send ``mail``; 4xx and network trouble are transient, 5xx permanent."""
        relay = self._settings
        if not relay.host:
            raise PermanentDeliveryError("no SMTP relay is configured for the email channel")
        async with self._lock:
            for attempt in (1, 2):
                client = await self._connected(relay)
                try:
                    errors, _ = await client.send_message(mail)
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    codes = [r.code for r in exc.recipients]
                    detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
                    if codes and all(400 <= c < 500 for c in codes):
                        raise TransientDeliveryError(f"relay deferred: {detail}") from exc
                    raise PermanentDeliveryError(f"relay refused: {detail}") from exc
                except aiosmtplib.SMTPResponseException as exc:
                    if 400 <= exc.code < 500:
                        raise TransientDeliveryError(
                            f"relay said {exc.code} {exc.message}"
                        ) from exc
                    if exc.code >= 500:
                        raise PermanentDeliveryError(
                            f"relay said {exc.code} {exc.message}"
                        ) from exc
                    raise TransientDeliveryError(str(exc)) from exc
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
                    # A reused connection the relay had closed: once more on a fresh one.
                    await self._drop_connection()
                    if attempt == 2:
                        self.last_error = f"relay {relay.host}:{relay.port}: {exc}"
                        raise TransientDeliveryError(f"relay disconnected: {exc}") from exc
                    continue
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    await self._drop_connection()
                    self.last_error = f"relay {relay.host}:{relay.port}: {exc}"
                    raise TransientDeliveryError(f"relay unreachable: {exc}") from exc
                self.last_error = ""
                if errors:
                    detail = "; ".join(f"{k}: {v.code} {v.message}" for k, v in errors.items())
                    raise PermanentDeliveryError(f"relay refused: {detail}")
                return
        raise AssertionError("unreachable")

    async def _connected(self, relay: RelaySettings) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        context = ssl.create_default_context()
        if not relay.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=relay.timeout_seconds,
            use_tls=relay.security == "tls",
            start_tls=relay.security == "starttls",
            tls_context=context if relay.security != "none" else None,
            username=relay.username or None,
            password=relay.password or None,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Refused logins and broken TLS are the operator's to fix (health shows it);
            # the replies wait and retry meanwhile.
            self.last_error = f"relay {relay.host}:{relay.port}: {exc}"
            raise TransientDeliveryError(f"relay unreachable: {exc}") from exc
        self._smtp = client
        return client

    async def close(self) -> None:
        async with self._lock:
            if self._smtp is not None:
                with contextlib.suppress(Exception):
                    await self._smtp.quit()
                self._smtp = None

    async def _drop_connection(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.close()
            self._smtp = None
