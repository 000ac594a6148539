"""The demo's scenario: who calls which LLM feature when, and what goes wrong — as plain data.

A story is a deterministic function of the seed and an *anchor* (the moment the demo first started):
`Story.visits(start, end)` yields the visits (one user request to one product feature, i.e. one trace)
whose story time falls in ``[start, end)``. The backfill turns them into spans with those timestamps;
the live app (traffic.py) replays them in real time through the instrumented SDKs. Nothing here does
I/O, so both paths, and the tests, see the same story.

The plot, relative to the anchor T0 and the backfill length B (defaults: B = 48 h):
* four features (ticket-summary, support-chat, email-draft, research-agent) and ~40 users with
  skewed activity, each user in sessions of a few visits, plus an LLM-as-judge that scores a sample;
* prompt ``summarise-ticket``: v3 until T0 - 0.4 B, then a 50/50 canary of v4, whose answers are
  twice as long (and liked less: fewer thumbs-up, lower judge scores, higher cost);
* the pinned ``gpt-4o-2024-08-06`` is silently swapped by the provider at T0 - 0.25 B: the response
  model and system fingerprint change, answers get 40 % longer, the request model stays the same;
* 429 bursts on support-chat's OpenAI model (once in the history, then every 15 story minutes live),
  each failed call followed, in the same trace, by a fallback call to Anthropic;
* a cost spike: research-agent loops (6x the calls, longer contexts and answers) from 75 minutes
  before T0 until 20 minutes after, then for 10 minutes of every hour;
* thumbs up/down feedback on ~30 % of answers.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)

SERVICE = "acme-helpdesk"
SWAPPED_MODEL = "gpt-4o-2024-08-06"
SWAP_TARGET = "gpt-4o-2024-11-20"
SWAP_VERBOSITY = 1.4
JUDGE_MODEL = "gpt-4.1-mini"
JUDGE_EVALUATION = "helpfulness"
OPENAI, ANTHROPIC = "openai", "anthropic"

_WORDS = ["customer", "order", "refund", "delayed", "payment", "checkout", "error", "page", "shows", "invoice", "twice", "account", "locked", "password", "reset", "shipping", "label", "address", "wrong", "package", "damaged", "warranty", "claim", "subscription", "renewal", "charged", "cancel", "plan", "upgrade", "discount", "code", "expired", "support", "agent", "replied", "escalate", "priority", "urgent", "mobile", "app", "crashes", "login", "screen", "android", "version", "update", "notification", "email", "missing", "attachment", "export", "report", "dashboard", "slow", "timeout", "integration", "webhook", "failing", "retry", "api", "key", "rotated", "billing", "cycle", "prorated", "credit", "balance", "tax", "region", "currency", "conversion", "ticket", "merged", "duplicate", "follow", "up"]


@dataclass(frozen=True)
class Feature:
    """A product feature: its share of traffic, prompt, model (and fallback), sizes and how liked it is."""

    name: str
    share: float
    prompt_name: str
    prompt_version: str
    model: str
    provider: str
    stream: bool
    input_words: tuple[int, int]
    output_tokens: tuple[float, float]  # mean, standard deviation
    thumbs_up: float
    judge_mean: float | None = None
    fallback: tuple[str, str] | None = None  # (model, provider) tried when the primary call fails


FEATURES: tuple[Feature, ...] = (
    Feature("ticket-summary", 0.36, "summarise-ticket", "v3", SWAPPED_MODEL, OPENAI, True, (250, 1200),
            (80, 20), 0.82, judge_mean=0.84),
    Feature("support-chat", 0.33, "support-chat", "v7", "gpt-4.1", OPENAI, True, (60, 350), (110, 35), 0.76,
            judge_mean=0.8, fallback=("claude-haiku-4-5", ANTHROPIC)),
    Feature("email-draft", 0.21, "draft-reply", "v2", "claude-haiku-4-5", ANTHROPIC, True, (150, 500),
            (170, 45), 0.8, judge_mean=0.78),
    Feature("research-agent", 0.10, "deep-research", "v1", "claude-opus-4-5", ANTHROPIC, False, (700, 2200),
            (320, 90), 0.7),
)
FEATURE_BY_NAME = {f.name: f for f in FEATURES}

# (time to first token in seconds, seconds per output token) of each model, before latency_scale.
LATENCY: dict[str, tuple[float, float]] = {
    SWAPPED_MODEL: (0.35, 0.012), "gpt-4.1": (0.45, 0.015), JUDGE_MODEL: (0.25, 0.008),
    "claude-haiku-4-5": (0.3, 0.008), "claude-opus-4-5": (0.9, 0.02),
}


@dataclass(frozen=True)
class StoryConfig:
    """What shapes the story: seed, anchor, history length, traffic rate and how fast calls are."""

    seed: int = 7
    anchor: dt.datetime = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)
    backfill: dt.timedelta = dt.timedelta(hours=48)
    visits_per_hour: float = 360.0
    latency_scale: float = 1.0
    users: int = 40
    judge_share: float = 0.2
    feedback_share: float = 0.3
    live_burst_every: dt.timedelta = 15 * MINUTE
    live_burst_length: dt.timedelta = 2 * MINUTE
    live_burst_offset: dt.timedelta = 3 * MINUTE


@dataclass(frozen=True)
class Call:
    """One LLM call as the story wants it: the fake server is told the length, timing and failure."""

    model: str
    provider: str
    stream: bool
    output_tokens: int
    ttft_s: float
    token_delay_s: float
    fail: str | None = None  # "429" or "500": the provider answers with that error

    @property
    def duration_s(self) -> float:
        return self.ttft_s + self.output_tokens * self.token_delay_s


@dataclass(frozen=True)
class Visit:
    """One user request to one feature: a trace with a primary call, maybe a fallback, feedback, a judge."""

    at: dt.datetime
    index: int
    feature: str
    user_id: str
    session_id: str
    prompt_name: str
    prompt_version: str
    system: str
    history: tuple[dict[str, str], ...]
    input_words: int
    text_seed: int
    calls: tuple[Call, ...]  # primary, then the fallback used when the primary fails
    max_tokens: int
    feedback: float | None = None  # 1.0 thumbs up, 0.0 thumbs down
    judge: Call | None = None
    judge_score: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def route(self) -> str:
        return f"/api/{self.feature}"

    def messages(self, text: bool = True) -> list[dict[str, str]]:
        """The chat messages (without the system prompt). The user text is built on demand since only
        the live app sends it; ``text=False`` gives filler of the same word count (same token count)."""
        if text:
            words = random.Random(self.text_seed).choices(_WORDS, k=self.input_words)
            body = " ".join(words)
        else:
            body = "w " * self.input_words
        return [*self.history, {"role": "user", "content": body}]


class Story:
    """The scenario's schedule and the generator of its visits."""

    def __init__(self, config: StoryConfig) -> None:
        self.config = config
        b = config.backfill
        self.canary_at = config.anchor - 0.4 * b
        self.swap_at = config.anchor - 0.25 * b
        length = min(max(0.01 * b, 3 * MINUTE), 25 * MINUTE)
        self.history_burst = (config.anchor - 0.15 * b, config.anchor - 0.15 * b + length)
        self.first_spike = (config.anchor - min(75 * MINUTE, 0.1 * b), config.anchor + 20 * MINUTE)

    # --- the schedule ------------------------------------------------------------------------
    def in_burst(self, t: dt.datetime) -> bool:
        """A 429 burst on support-chat's OpenAI model is under way at story time ``t``."""
        start, end = self.history_burst
        if start <= t < end:
            return True
        c = self.config
        since = t - (c.anchor + c.live_burst_offset)
        return since >= dt.timedelta(0) and since % c.live_burst_every < c.live_burst_length

    def in_spike(self, t: dt.datetime) -> bool:
        """research-agent is looping (the cost spike) at story time ``t``."""
        start, end = self.first_spike
        if start <= t < end:
            return True
        return t >= end and (t - end) % HOUR >= 50 * MINUTE

    def swapped(self, t: dt.datetime) -> bool:
        return t >= self.swap_at

    def swap_spec(self, live_start: dt.datetime, speed: float) -> str:
        """The fake-llm ``--swap`` for a live run starting at story time ``live_start`` at ``speed``."""
        delay = max(0.0, (self.swap_at - live_start).total_seconds() / speed)
        return f"{SWAPPED_MODEL}={SWAP_TARGET}*{SWAP_VERBOSITY:g}@{delay:g}"

    def rate(self, feature: Feature, t: dt.datetime) -> float:
        """Visits per hour of ``feature`` at ``t``: a mild daily cycle, and the spike's loop."""
        hour = t.hour + t.minute / 60
        daily = 1.0 + 0.25 * math.sin((hour - 9) / 24 * 2 * math.pi)
        spike = 6.0 if feature.name == "research-agent" and self.in_spike(t) else 1.0
        return self.config.visits_per_hour * feature.share * daily * spike

    # --- the visits --------------------------------------------------------------------------
    def visits(self, start: dt.datetime, end: dt.datetime | None = None, phase: str = "history"
               ) -> Iterator[Visit]:
        """Visits with story time in ``[start, end)`` (endless without ``end``), in time order."""
        rng = random.Random(f"{self.config.seed}/{phase}/{start.isoformat()}")
        sessions: dict[str, tuple[str, int]] = {}
        users = [f"u-{i:03d}" for i in range(1, self.config.users + 1)]
        weights = [1 / (i ** 1.1) for i in range(1, len(users) + 1)]
        upcoming = {f.name: start + self._gap(rng, f, start) for f in FEATURES}
        index = 0
        while True:
            name, at = min(upcoming.items(), key=lambda kv: kv[1])
            if end is not None and at >= end:
                return
            feature = FEATURE_BY_NAME[name]
            upcoming[name] = at + self._gap(rng, feature, at)
            user = rng.choices(users, weights)[0]
            yield self._visit(rng, feature, at, index, user, self._session(rng, sessions, user))
            index += 1

    def _gap(self, rng: random.Random, feature: Feature, t: dt.datetime) -> dt.timedelta:
        return dt.timedelta(hours=rng.expovariate(self.rate(feature, t)))

    @staticmethod
    def _session(rng: random.Random, sessions: dict[str, tuple[str, int]], user: str) -> tuple[str, int]:
        """(session id, turn) — a user keeps a session for a few visits, then starts a new one."""
        session, turn = sessions.get(user, ("", 0))
        if not session or rng.random() < 0.3:
            session, turn = f"s-{user[2:]}-{rng.getrandbits(24):06x}", 0
        sessions[user] = (session, turn + 1)
        return session, turn + 1

    def _visit(self, rng: random.Random, f: Feature, at: dt.datetime, index: int, user: str,
               session: tuple[str, int]) -> Visit:
        version = f.prompt_version
        mean, sd = f.output_tokens
        thumbs, judge_mean = f.thumbs_up, f.judge_mean
        if f.name == "ticket-summary" and at >= self.canary_at and rng.random() < 0.5:
            version, mean, sd, thumbs, judge_mean = "v4", mean * 2, sd * 2, 0.6, 0.74
        spike = f.name == "research-agent" and self.in_spike(at)
        words = rng.randint(*f.input_words) * (2 if spike else 1)
        out = max(5, int(rng.gauss(mean * (1.8 if spike else 1), sd)))
        system, history = self._prompt(f, version, session[1])
        primary = self._call(rng, f.model, f.provider, f.stream, out, words, self._failure(rng, f, at))
        calls = (primary,)
        if f.fallback and primary.fail:
            calls += (self._call(rng, *f.fallback, f.stream, out, words, None),)
        feedback = judge = score = None
        if rng.random() < self.config.feedback_share:
            feedback = 1.0 if rng.random() < thumbs * (0.85 if len(calls) > 1 else 1.0) else 0.0
        if judge_mean is not None and rng.random() < self.config.judge_share:
            judge = self._call(rng, JUDGE_MODEL, OPENAI, False, max(8, int(rng.gauss(40, 10))), 120, None)
            score = round(min(1.0, max(0.0, rng.gauss(judge_mean, 0.1))), 2)
        return Visit(at=at, index=index, feature=f.name, user_id=user, session_id=session[0],
                     prompt_name=f.prompt_name, prompt_version=version, system=system, history=history,
                     input_words=words, text_seed=rng.getrandbits(32),
                     calls=calls, max_tokens=int(out * 3 + 200), feedback=feedback, judge=judge,
                     judge_score=score, tags={"tier": "enterprise" if user < "u-006" else "self-serve"})

    def _failure(self, rng: random.Random, f: Feature, at: dt.datetime) -> str | None:
        if f.fallback is None:
            return None
        if self.in_burst(at) and rng.random() < 0.7:
            return "429"
        return "500" if rng.random() < 0.01 else None

    def _call(self, rng: random.Random, model: str, provider: str, stream: bool, out: int, words: int,
              fail: str | None) -> Call:
        base_ttft, per_token = LATENCY[model]
        slow = 4.0 if rng.random() < 0.02 else 1.0
        ttft = (base_ttft * rng.lognormvariate(0, 0.3) * slow + words * 0.00015) * self.config.latency_scale
        return Call(model, provider, stream, out, round(ttft, 4),
                    round(per_token * rng.uniform(0.8, 1.2) * self.config.latency_scale, 5), fail)

    @staticmethod
    def _prompt(f: Feature, version: str, turn: int) -> tuple[str, tuple[dict[str, str], ...]]:
        """System prompt, and the earlier turns of a support-chat session."""
        system = (f"You are Acme's {f.name} assistant, prompt {f.prompt_name} {version}. "
                  + ("Be thorough: explain every step in detail." if version == "v4" else "Be concise."))
        history: list[dict[str, str]] = []
        if f.name == "support-chat":
            for i in range(min(turn - 1, 3)):
                history += [{"role": "user", "content": f"earlier question {i + 1} about the order"},
                            {"role": "assistant", "content": f"earlier answer {i + 1} with the status"}]
        return system, tuple(history)


def story_time(live_start: dt.datetime, real_elapsed_s: float, speed: float) -> dt.datetime:
    """Story time ``real_elapsed_s`` seconds into a live run that started at ``live_start``."""
    return live_start + dt.timedelta(seconds=real_elapsed_s * speed)
