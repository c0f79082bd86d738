"""The bus: jobs to workers, events to API nodes, control commands to every chat worker.

Two implementations share this interface: ``memory.InMemoryBus`` (the embedded default,
everything inside one process) and ``amqp.AmqpBus`` (RabbitMQ through aio-pika). Bodies
are bytes (orjson); ``app.bus.messages`` holds their shapes.

Topology (the AMQP names; the in-memory bus behaves the same)::

    insighthub.jobs (direct)      chat.request / document.process / workspace.provision
                                  → queues chat.requests / document.jobs / workspace.jobs
                                    (quorum, delivery limit, dead-letter queue <queue>.dead)
    insighthub.events (topic)     chat.<session_id>.<kind>, workspace.<id>.<kind>,
                                  user.<id>.<kind>, node.<node_id>.<kind>
                                  → each API node's own exclusive queue, bound per pattern;
                                  ``batch``: events published in one pass of the loop, in
                                  one message to every node, which keeps those matching
                                  its own patterns (``app.bus.amqp_outbox``)
    insighthub.control (fanout)   cancel and text requests → every chat worker
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

JobQueue = Literal["chat", "documents", "workspaces"]
JOB_QUEUES: tuple[JobQueue, ...] = ("chat", "documents", "workspaces")

# AMQP names, kept here so both implementations and the tests agree on them.
JOBS_EXCHANGE = "insighthub.jobs"
EVENTS_EXCHANGE = "insighthub.events"
CONTROL_EXCHANGE = "insighthub.control"
PARKED_QUEUE = "insighthub.parked"
JOB_ROUTING_KEYS: dict[JobQueue, str] = {
    "chat": "chat.request",
    "documents": "document.process",
    "workspaces": "workspace.provision",
}
JOB_QUEUE_NAMES: dict[JobQueue, str] = {
    "chat": "chat.requests",
    "documents": "document.jobs",
    "workspaces": "workspace.jobs",
}


class JobDelivery(Protocol):
    """One delivery of a job; exactly one of ack, requeue or reject settles it."""

    @property
    def body(self) -> bytes: ...

    @property
    def redelivered(self) -> bool: ...

    async def ack(self) -> None: ...

    async def requeue(self) -> None:
        """Hand the job back for another worker (counts against the delivery limit)."""
        ...

    async def reject(self) -> None:
        """Not a job (it does not parse): dead-letter it, never retry it."""
        ...


JobHandler = Callable[[JobDelivery], Awaitable[None]]
EventHandler = Callable[[str, bytes], Awaitable[None]]
ControlHandler = Callable[[bytes], Awaitable[None]]


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop delivering; deliveries already handed out may still be settled."""
        ...


class Bus(Protocol):
    node_id: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True while the broker answers (readiness)."""
        ...

    async def publish_job(self, queue: JobQueue, body: bytes) -> None:
        """Persist a job; raises ``ServiceUnavailable`` if the broker cannot take it in time."""
        ...

    async def consume_jobs(
        self, queue: JobQueue, handler: JobHandler, *, prefetch: int
    ) -> Subscription: ...

    async def consume_dead_letters(self, queue: JobQueue, handler: JobHandler) -> Subscription:
        """Jobs that ran out of deliveries or were rejected."""
        ...

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        """Transient, at most once; a missed event is recovered with ``resume``."""
        ...

    async def consume_events(self, handler: EventHandler) -> Subscription:
        """This node's own event feed: only keys matching a bound pattern arrive."""
        ...

    async def bind(self, pattern: str) -> None:
        """Reference-counted: the first bind of a pattern binds the node's queue."""
        ...

    async def unbind(self, pattern: str) -> None:
        """The last unbind of a pattern unbinds it."""
        ...

    async def publish_control(self, body: bytes) -> None: ...

    async def consume_control(self, handler: ControlHandler) -> Subscription: ...


class BindingCounts:
    """Reference counts of bound patterns: the truth a bus reconciles its queue with.

    It also answers ``matches`` for a routing key locally, the way the broker would, for
    events that arrive without the broker's routing (the in-memory bus; AMQP batches).
    Every pattern the project binds is ``<kind>.<id>.*``, so those are indexed by their
    two-word prefix and a key costs one set lookup; any other shape is matched by scan.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._prefixes: set[str] = set()
        self._others: set[str] = set()

    def add(self, pattern: str) -> bool:
        """Count one more holder; True when this is the first (bind now)."""
        n = self._counts.get(pattern, 0) + 1
        self._counts[pattern] = n
        if n == 1:
            self._index(pattern, present=True)
        return n == 1

    def remove(self, pattern: str) -> bool:
        """Count one holder less; True when it was the last (unbind now)."""
        n = self._counts.get(pattern, 0)
        if n <= 1:
            self._counts.pop(pattern, None)
            if n == 1:
                self._index(pattern, present=False)
            return n == 1
        self._counts[pattern] = n - 1
        return False

    def _index(self, pattern: str, *, present: bool) -> None:
        prefix = _one_word_wildcard_prefix(pattern)
        where, item = (self._others, pattern) if prefix is None else (self._prefixes, prefix)
        if present:
            where.add(item)
        else:
            where.discard(item)

    def matches(self, routing_key: str) -> bool:
        """Whether any counted pattern matches ``routing_key`` (AMQP topic rules)."""
        first = routing_key.find(".")
        last = routing_key.rfind(".")
        if first > 0 and last > first and routing_key.find(".", first + 1) == last:
            if routing_key[:last] in self._prefixes:
                return True
        return any(topic_matches(p, routing_key) for p in self._others)

    def patterns(self) -> set[str]:
        return set(self._counts)

    def __contains__(self, pattern: object) -> bool:
        return pattern in self._counts


def _one_word_wildcard_prefix(pattern: str) -> str | None:
    """``a.b`` for ``a.b.*`` (two literal words, then one wildcard word), else None."""
    words = pattern.split(".")
    if len(words) == 3 and words[2] == "*" and not {"*", "#", ""} & {words[0], words[1]}:
        return f"{words[0]}.{words[1]}"
    return None


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    return _match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


def chat_key(session_id: object, kind: str) -> str:
    return f"chat.{session_id}.{kind}"


def session_pattern(session_id: object) -> str:
    return f"chat.{session_id}.*"


def workspace_key(workspace_id: object, kind: str) -> str:
    return f"workspace.{workspace_id}.{kind}"


def workspace_pattern(workspace_id: object) -> str:
    return f"workspace.{workspace_id}.*"


def user_key(user_id: object, kind: str) -> str:
    return f"user.{user_id}.{kind}"


def user_pattern(user_id: object) -> str:
    return f"user.{user_id}.*"


def node_pattern(node_id: str) -> str:
    return f"node.{node_id}.*"
