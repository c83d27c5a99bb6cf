"""Whether a mail's sender is who it says: SPF, DKIM and DMARC results.

Anyone can write any From. Answering a forged one sends our acknowledgement to a
stranger (backscatter), and to someone who never wrote. Two sources of results:

- ``Authentication-Results`` headers (RFC 8601) added by a trusted upstream (the
  MTA that forwards mail to us), recognised by their authserv-id. Only those: a
  sender can put any header into a mail, and a border MTA removes headers that
  carry its own id (RFC 8601 section 5), so a trusted id stands for a check that
  server made.
- Optionally our own check on the SMTP receiver: DKIM signatures (dkimpy) and the
  From domain's DMARC policy (authheaders), DNS through an injectable TXT lookup.
  SPF needs the connecting address and DNS at once, so it is read from the
  upstream's header rather than checked here.

A mail that fails is still stored, flagged for a person; only nothing automatic
goes back to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import authheaders
import authres

__all__ = ["SenderCheck", "TxtLookup", "check_here", "read_upstream"]

logger = logging.getLogger(__name__)

# A DNS TXT lookup: the record's text for a name, or None.
TxtLookup = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class SenderCheck:
    """Results by method (``spf``, ``dkim``, ``dmarc``: ``pass``, ``fail``, ``none``…)
    and who made them."""

    results: tuple[tuple[str, str], ...]
    by: str

    def result(self, method: str) -> str | None:
        return next((r for m, r in self.results if m == method), None)

    @property
    def failure(self) -> str | None:
        """Why the sender is not to be answered automatically, or None.

        DMARC decides where the domain publishes it. Without a DMARC verdict, a
        hard SPF fail or a broken DKIM signature with nothing that passed is a fail
        too; no results at all is not (most desks have no upstream that checks).
        """
        dmarc, spf, dkim_ = self.result("dmarc"), self.result("spf"), self.result("dkim")
        if dmarc == "fail":
            return f"dmarc=fail ({self.by})"
        if dmarc == "pass" or "pass" in (spf, dkim_):
            return None
        failed = [f"{m}={r}" for m, r in (("spf", spf), ("dkim", dkim_)) if r == "fail"]
        return f"{' '.join(failed)} ({self.by})" if failed else None

    def header_text(self) -> str:
        return "; ".join(f"{m}={r}" for m, r in self.results) + f" ({self.by})"


def read_upstream(values: Iterable[str], trusted: Iterable[str]) -> SenderCheck | None:
    """The topmost ``Authentication-Results`` value from a trusted authserv-id."""
    ids = {t.strip().lower() for t in trusted}
    if not ids:
        return None
    for value in values:
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # a sender's garbage header: authres raises its own many kinds
            continue
        if str(header.authserv_id).lower() in ids:
            results = tuple((str(r.method).lower(), str(r.result).lower()) for r in header.results)
            return SenderCheck(results, by=str(header.authserv_id))
    return None


def check_here(raw: bytes, from_domain: str | None, lookup: TxtLookup | None) -> SenderCheck:
    """DKIM and DMARC checked by us. Blocking (DNS): run it in a thread."""
    dnsfunc = _dnsfunc(lookup) if lookup is not None else None
    dkim_result: authres.DKIMAuthenticationResult | None = None
    results: list[tuple[str, str]] = []
    if _has_signature(raw):
        try:
            dkim_result = authheaders.check_dkim(raw, dnsfunc=dnsfunc)
            results.append(("dkim", str(dkim_result.result).lower()))
        except Exception as exc:  # dkimpy raises many kinds on hostile signatures
            logger.info("DKIM check failed: %s", type(exc).__name__)
            results.append(("dkim", "fail"))
    else:
        results.append(("dkim", "none"))
    if from_domain:
        try:
            verdict, _, _, _ = authheaders.dmarc_per_from(
                from_domain, spf_result=None, dkim_result=dkim_result, dnsfunc=dnsfunc
            )
            results.append(("dmarc", str(verdict).lower() or "none"))
        except Exception as exc:
            logger.info("DMARC check for %s failed: %s", from_domain, type(exc).__name__)
            results.append(("dmarc", "temperror"))
    return SenderCheck(tuple(results), by="checked here")


def _has_signature(raw: bytes) -> bool:
    head, _, _ = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return any(line.lower().startswith(b"dkim-signature:") for line in head.split(b"\n"))


def _dnsfunc(lookup: TxtLookup) -> Callable[..., bytes | str | None]:
    """``lookup`` in the two shapes the libraries call: dkimpy asks with bytes and
    wants bytes, the DMARC lookup asks with str and wants str."""

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | str | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        found = lookup(text.rstrip("."))
        if found is None:
            return None
        return found.encode() if isinstance(name, bytes) else found

    return dnsfunc
