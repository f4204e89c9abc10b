"""robots.txt as RFC 9309 says, with the rule that decided each URL (for `crawl --check`).

The crawl fetches robots.txt once per host before its first listing request and checks every
request against it (the same rules `--check` prints). Answers:

- 2xx: the rules; the group of our product token `deeproot`, else `*`; the longest matching
  `Allow`/`Disallow` pattern wins (`*` and `$` supported), `Allow` on a tie; `Crawl-delay` is read
  from the chosen group and honoured as the lower bound of the delay;
- 4xx: no rules, everything allowed ("unavailable" in the RFC);
- 5xx, a timeout, or a body we cannot read: everything disallowed ("unreachable");
- no connection at all: the site is unreachable (the crawl stops with exit 5, not a robots verdict).

Only the first 512 KiB are parsed (the RFC asks crawlers to parse at least 500 KiB).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlparse, urlunparse

PRODUCT_TOKEN = "deeproot"
MAX_ROBOTS_BYTES = 512 * 1024


@dataclass(frozen=True)
class Rule:
    allow: bool
    pattern: str
    line: int

    def text(self) -> str:
        return f"line {self.line}: {'Allow' if self.allow else 'Disallow'}: {self.pattern}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    why: str  # the matching rule, or why there is none


@dataclass
class Robots:
    """The robots.txt of one host and what it means for us.

    `state`: "rules" (2xx), "allow_all" (4xx), "disallow_all" (5xx, timeout), "unreachable"
    (no connection), "challenge" (robots.txt itself answered with a bot challenge).
    """

    url: str
    state: str
    status: int | None = None
    detail: str = ""  # what happened, for messages
    group: str | None = None  # the user-agent line of the group that applies
    rules: tuple[Rule, ...] = ()
    crawl_delay: float | None = None
    crawl_delay_line: int | None = None
    _compiled: list[tuple[Rule, re.Pattern[str]]] = field(default_factory=list, repr=False)

    def check(self, url: str) -> Decision:
        """May `url` be fetched, and which rule says so."""
        if self.state == "allow_all":
            return Decision(True, f"{self.url} answered HTTP {self.status}: no rules apply")
        if self.state != "rules":
            return Decision(False, f"{self.url} {self.detail}: everything is disallowed")
        u = urlparse(url)
        target = _norm(u.path or "/") + (f"?{u.query}" if u.query else "")
        best: Rule | None = None
        for rule, rx in self._compiled:
            if rx.match(target) and (
                best is None
                or len(rule.pattern) > len(best.pattern)
                or (len(rule.pattern) == len(best.pattern) and rule.allow and not best.allow)
            ):
                best = rule
        if best is None:
            who = f"group `User-agent: {self.group}`" if self.group else "no group for us"
            return Decision(True, f"no rule matches ({who})")
        return Decision(best.allow, f"{best.text()} (group `User-agent: {self.group}`)")


def _norm(path: str) -> str:
    return re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), path)


def _pattern(p: str) -> re.Pattern[str]:
    anchored = p.endswith("$")
    body = p[:-1] if anchored else p
    rx = "".join(".*" if ch == "*" else re.escape(ch) for ch in _norm(body))
    return re.compile(rx + ("$" if anchored else ""))


def parse_robots(text: str, url: str, status: int = 200, agent: str = PRODUCT_TOKEN) -> Robots:
    """The rules of `text` for `agent` (groups merged as RFC 9309 says)."""
    groups: list[tuple[list[str], list[Rule], list[tuple[float, int]]]] = []
    agents: list[str] = []
    rules: list[Rule] = []
    delays: list[tuple[float, int]] = []
    in_rules = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (x.strip() for x in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if in_rules:
                groups.append((agents, rules, delays))
                agents, rules, delays, in_rules = [], [], [], False
            agents.append(value)
        elif key in ("allow", "disallow"):
            in_rules = True
            if value:  # an empty Disallow is no rule
                rules.append(Rule(key == "allow", value, n))
        elif key == "crawl-delay":
            in_rules = True
            try:
                delays.append((float(value), n))
            except ValueError:
                pass
    if agents:
        groups.append((agents, rules, delays))
    mine = [g for g in groups if any(_is_us(a, agent) for a in g[0])]
    label = agent
    if not mine:
        mine = [g for g in groups if "*" in g[0]]
        label = "*"
    chosen_rules = tuple(r for g in mine for r in g[1])
    chosen_delays = [d for g in mine for d in g[2]]
    robots = Robots(
        url=url,
        state="rules",
        status=status,
        group=label if mine else None,
        rules=chosen_rules,
        crawl_delay=chosen_delays[0][0] if chosen_delays else None,
        crawl_delay_line=chosen_delays[0][1] if chosen_delays else None,
    )
    robots._compiled = [(r, _pattern(r.pattern)) for r in chosen_rules]
    return robots


def _is_us(value: str, agent: str) -> bool:
    v = value.strip().lower()
    return v == agent or v.startswith(agent + "/")


def robots_url(url: str) -> str:
    u = urlparse(url)
    return urlunparse((u.scheme, u.netloc, "/robots.txt", "", "", ""))


def fetch_robots(url: str, user_agent: str, timeout: float) -> Robots:
    """Fetch and interpret the robots.txt of `url`'s host (one request, body capped)."""
    from deeproot.crawler.parse import stop_reason

    where = robots_url(url)
    req = urllib.request.Request(where, headers={"User-Agent": user_agent, "Accept": "text/plain"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only
            body = resp.read(MAX_ROBOTS_BYTES)
            status = resp.status
            headers = {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_ROBOTS_BYTES) if exc.fp is not None else b""
        text = body.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if stop_reason(exc.code, text, headers) is not None:
            return Robots(where, "challenge", exc.code, "answered with a bot challenge page")
        if exc.code >= 500:
            return Robots(where, "disallow_all", exc.code, f"answered HTTP {exc.code}")
        return Robots(where, "allow_all", exc.code, f"answered HTTP {exc.code}")
    except TimeoutError:
        return Robots(where, "disallow_all", None, f"did not answer within {timeout:g} s")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return Robots(where, "disallow_all", None, f"did not answer within {timeout:g} s")
        return Robots(where, "unreachable", None, f"cannot be reached ({reason})")
    except (OSError, ValueError) as exc:
        return Robots(where, "unreachable", None, f"cannot be reached ({exc})")
    text = body.decode("utf-8", "replace")
    if stop_reason(status, text, headers) is not None:
        return Robots(where, "challenge", status, "answered with a bot challenge page")
    return parse_robots(text, where, status)
