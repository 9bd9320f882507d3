"""Content negotiation by the RFC 9110 rules: q-values, specificity, and q=0 meaning "not this".

    acceptable_q("image/png;q=0, */*", "image/png")  -> 0.0
    best_of("image/webp;q=0.5, image/png", ["application/json", "image/png"]) -> "image/png"
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaRange:
    type: str  # "image" or "*"
    subtype: str  # "png" or "*"
    q: float
    order: int  # position in the header: earlier wins ties

    def matches(self, mime: str) -> bool:
        t, _, s = mime.partition("/")
        return (self.type == "*" or self.type == t) and (self.subtype == "*" or self.subtype == s)

    @property
    def specificity(self) -> int:
        return (self.type != "*") + (self.subtype != "*")


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header; malformed items are skipped (an unparsable q
    counts as 1, as most servers do)."""
    out: list[MediaRange] = []
    for i, item in enumerate((header or "").split(",")):
        fields = [f.strip() for f in item.split(";")]
        media = fields[0].lower()
        t, sep, s = media.partition("/")
        if not sep or not t or not s or (t == "*" and s != "*"):
            continue
        q = 1.0
        for param in fields[1:]:
            k, _, v = param.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(v.strip())))
                except ValueError:
                    q = 1.0
        out.append(MediaRange(t, s, q, i))
    return out


def _match(ranges: list[MediaRange], mime: str) -> MediaRange | None:
    """The most specific range that matches mime (RFC 9110 12.5.1), or None."""
    found = [r for r in ranges if r.matches(mime)]
    return max(found, key=lambda r: (r.specificity, -r.order)) if found else None


def acceptable_q(header: str | None, mime: str) -> float:
    """The q-value the header gives mime: 1 with no header, 0 when nothing matches."""
    ranges = parse_accept(header)
    if not header or not header.strip() or not ranges:
        return 1.0
    r = _match(ranges, mime)
    return 0.0 if r is None else r.q


def best_of(header: str | None, offers: list[str]) -> str | None:
    """The offer the client prefers most (highest q; then the more specific match, the earlier
    range, the earlier offer), or None when it accepts none of them. No header: the first."""
    ranges = parse_accept(header)
    if not header or not header.strip() or not ranges:
        return offers[0] if offers else None
    best: tuple[float, int, int, int] | None = None
    choice = None
    for k, mime in enumerate(offers):
        r = _match(ranges, mime)
        if r is None or r.q <= 0:
            continue
        key = (r.q, r.specificity, -r.order, -k)
        if best is None or key > best:
            best, choice = key, mime
    return choice


def excluded(header: str | None, mime: str) -> bool:
    """True when the header rules mime out with q=0 (its most specific matching range).
    A type the header does not mention at all is not excluded: a server may then send its
    only representation anyway (RFC 9110 12.5.1), which is what the output routes do."""
    r = _match(parse_accept(header), mime)
    return r is not None and r.q <= 0
