"""The chat worker: takes chat jobs, streams the provider, publishes chunks and the outcome.

It runs as tasks inside the API process on the embedded default and as its own process
(``insighthub worker chat``) in the distributed mode; the code is the same. One job is one
answer; the job is acked only after the outcome is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from app.bus.base import Bus, JobDelivery, Subscription, chat_key, node_pattern
from app.bus.messages import CancelCommand, ChatJob, TextRequest, event_body, parse_control
from app.bus.parsing import parse_dead_letter, parse_job
from app.chat import store
from app.chat.chunks import ChunkStream
from app.chat.finals import publish_stored_final
from app.chat.jobs import kick, publish_chat_job, publish_next
from app.chat.prompt import build_prompt
from app.db.engine import SessionFactory
from app.db.models import Message, Workspace
from app.db.types import utcnow
from app.llm.base import ChatTurn, LlmProviderError, Token
from app.llm.guard import guarded_stream
from app.llm.registry import ProviderRegistry
from app.settings import Settings

log = logging.getLogger(__name__)

Retriever = Callable[[uuid.UUID, str, int], Awaitable[list[dict[str, Any]]]]
StopReason = Literal["user", "shutdown"]


async def no_retrieval(_ws: uuid.UUID, _q: str, _k: int) -> list[dict[str, Any]]:
    return []


@dataclass(eq=False)
class Generation:
    """One answer being generated here; the cancel and resume paths find it by message id."""

    message_id: uuid.UUID
    session_id: uuid.UUID
    attempt: int
    stream: ChunkStream
    started: float = field(default_factory=time.monotonic)
    pump: asyncio.Task[None] | None = None
    stop_reason: StopReason | None = None
    checkpointed_len: int = 0
    checkpoint_due: float = 0.0  # monotonic time of its next checkpoint
    usage: dict[str, int] | None = None
    finish_reason: str | None = None

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.pump is not None:
            self.pump.cancel()


class ChatWorker:
    def __init__(
        self,
        settings: Settings,
        db: SessionFactory,
        bus: Bus,
        providers: ProviderRegistry,
        *,
        retriever: Retriever = no_retrieval,
        holder: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.providers = providers
        self.retriever = retriever
        self.holder = holder or f"{settings.node_id}-{uuid.uuid4().hex[:6]}"
        self.running: dict[uuid.UUID, Generation] = {}
        # Cancels for answers not (yet) running here: one can arrive between the claim's
        # commit and the generation's start. Kept a little while, checked at the start.
        self._early_cancels: dict[uuid.UUID, float] = {}
        self._subscriptions: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._setup_slots = asyncio.Semaphore(self.settings.turn_setup_concurrency)
        self._stopping = False
        self.jobs_done = 0

    # lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._subscriptions.append(
            await self.bus.consume_jobs(
                "chat", self._on_job, prefetch=self.settings.worker_concurrency
            )
        )
        self._subscriptions.append(await self.bus.consume_dead_letters("chat", self._on_dead))
        self._subscriptions.append(await self.bus.consume_control(self._on_control))
        self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name="chat-checkpoints"))
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="chat-sweep"))

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking jobs; let answers finish within the grace period; hand back the rest."""
        self._stopping = True
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.cancel()
        self._subscriptions.clear()
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        if self._handlers:
            _done, still = await asyncio.wait(set(self._handlers), timeout=grace)
            for gen in list(self.running.values()):
                gen.stop("shutdown")
            if still:
                await asyncio.wait(still, timeout=5)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # jobs --------------------------------------------------------------------------
    async def _on_job(self, delivery: JobDelivery) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            job = await parse_job(delivery, ChatJob)
            if job is None:
                return
            await self._run_job(job, delivery)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _run_job(self, job: ChatJob, delivery: JobDelivery) -> None:
        # A burst of jobs loads and claims a few at a time (``ChatTurns.accept`` says why).
        async with self._setup_slots:
            turn, claim = await store.load_turn(
                self.db, job.message_id, claim_as=(self.holder, self.settings.lease_s)
            )
        if turn is None or turn.message.status in store.ENDED:
            await delivery.ack()
            return
        msg, session, workspace = turn.message, turn.session, turn.workspace
        if turn.earlier_active or workspace.status == "provisioning":
            # Published again when the older answer ends or the workspace is ready.
            await delivery.ack()
            return
        if workspace.status == "failed":
            await self._fail_unavailable(msg)
            await delivery.ack()
            return
        if claim is None:
            claim = await store.claim(self.db, msg.id, self.holder, self.settings.lease_s)
        if claim is None:
            claim = await self._wait_for_lease(msg.id)
            if claim is None:
                await delivery.ack()
                return
        started = time.monotonic()
        outcome, finished = await self._generate(turn, claim.attempt)
        log.info(
            "chat job %s attempt %d: %s in %.2fs",
            msg.id,
            claim.attempt,
            outcome,
            time.monotonic() - started,
        )
        if outcome == "handed_back":
            await delivery.requeue()
            return
        if finished is not None:
            await publish_next(self.bus, session.id, finished.next_pending)
        else:
            await self.kick(session.id)
        await delivery.ack()
        self.jobs_done += 1

    async def _wait_for_lease(self, message_id: uuid.UUID) -> store.Claim | None:
        """A job for a message under someone else's lease: a redelivery after a crash waits
        for the lease to run out and takes it; a duplicate of a live one is dropped."""
        seen_expiry = None
        while not self._stopping:
            state = await store.lease_state(self.db, message_id)
            if state is None:
                return None
            status, holder, expires = state
            if status == "pending":
                return await store.claim(self.db, message_id, self.holder, self.settings.lease_s)
            if status != "streaming" or holder == self.holder or expires is None:
                return None
            if seen_expiry is not None and expires > seen_expiry:
                return None  # the holder renewed its lease: it is alive
            seen_expiry = expires
            wait = (expires - utcnow()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait + 0.05)
                continue
            return await store.claim(self.db, message_id, self.holder, self.settings.lease_s)
        return None

    async def _fail_unavailable(self, msg: Message) -> None:
        ended = await store.end_unclaimed(
            self.db,
            msg.id,
            status="failed",
            error_type="workspace_unavailable",
            error_message="the workspace could not be provisioned",
        )
        if ended is not None:
            await publish_stored_final(self.bus, ended)
            await self.kick(ended.session_id)

    async def kick(self, session_id: uuid.UUID) -> None:
        await kick(self.db, self.bus, session_id)

    # generation --------------------------------------------------------------------
    async def _prompt(self, turn: store.Turn) -> tuple[list[ChatTurn], list[dict[str, Any]]]:
        msg, question = turn.message, turn.question
        earlier: list[ChatTurn] = []
        if turn.has_history:
            past = await store.history(self.db, turn.session.id, msg.created_at)
            earlier = [
                ChatTurn("user" if m.role == "user" else "assistant", m.content)
                for m in past
                if m.id != msg.reply_to_id
            ]
        sources: list[dict[str, Any]] = []
        if msg.rag_type == "vector" and question and turn.has_documents:
            sources = await self.retriever(
                turn.session.workspace_id, question, self.settings.retrieval_top_k
            )
        turns = build_prompt(
            earlier, question, sources, token_budget=self.settings.history_token_budget
        )
        return turns, sources

    def _provider_stream(self, workspace: Workspace, turns: list[ChatTurn]) -> AsyncIterator[Token]:
        primary = self.providers.get(workspace.llm_provider)
        fallback = None
        if workspace.fallback_provider and workspace.fallback_provider in self.providers:
            fallback = (self.providers.get(workspace.fallback_provider), workspace.fallback_model)
        return guarded_stream(
            primary,
            turns,
            model=workspace.llm_model,
            timeouts=self.settings.timeouts(),
            max_retries=self.settings.llm_max_retries,
            retry_base_delay_s=self.settings.llm_retry_base_delay_s,
            max_tokens=self.settings.llm_max_tokens,
            fallback=fallback,
        )

    async def _pump(self, gen: Generation, tokens: AsyncIterator[Token]) -> None:
        push = gen.stream.push
        async with aclosing(tokens) as stream:  # type: ignore[type-var]
            async for token in stream:
                if token.text:
                    push(token.text)
                if token.usage is not None:
                    gen.usage = {
                        "prompt_tokens": token.usage.prompt_tokens,
                        "completion_tokens": token.usage.completion_tokens,
                    }
                if token.finish_reason is not None:
                    gen.finish_reason = token.finish_reason

    async def _generate(self, turn: store.Turn, attempt: int) -> tuple[str, store.Finished | None]:
        """The outcome in words, and what ``store.finish`` stored (None if nothing was)."""
        msg, session, workspace = turn.message, turn.session, turn.workspace
        sid, mid = str(session.id), str(msg.id)
        gen = Generation(
            msg.id,
            session.id,
            attempt,
            ChunkStream(
                self.bus.publish_event,
                routing_key=chat_key(sid, "chunk"),
                session_id=sid,
                message_id=mid,
                attempt=attempt,
                min_interval_s=self.settings.chunk_min_interval_s,
            ),
        )
        gen.checkpoint_due = gen.started + self.settings.checkpoint_interval_s
        self.running[msg.id] = gen
        if self._early_cancels.pop(msg.id, None) is not None:
            gen.stop("user")
        error: LlmProviderError | None = None
        sources: list[dict[str, Any]] = []
        try:
            try:
                turns, sources = await self._prompt(turn)
                tokens = self._provider_stream(workspace, turns)
            except LlmProviderError as exc:
                error = exc
            except Exception as exc:
                log.exception("preparing the prompt of %s failed", mid)
                error = LlmProviderError("server_error", f"could not prepare the answer: {exc}")
            if error is None and gen.stop_reason is None:
                gen.pump = asyncio.create_task(self._pump(gen, tokens))
                await asyncio.wait({gen.pump})
                if not gen.pump.cancelled() and (failure := gen.pump.exception()) is not None:
                    if isinstance(failure, LlmProviderError):
                        error = failure
                    else:
                        log.error("the stream of %s failed", mid, exc_info=failure)
                        error = LlmProviderError("server_error", "the answer failed on the server")
            await gen.stream.drain()
            text = gen.stream.text()
            if gen.stop_reason == "shutdown":
                await store.release_leases(self.db, self.holder, {msg.id: text})
                return "handed_back", None
            failed = error is not None and gen.stop_reason != "user"
            complete = error is None and gen.stop_reason is None
            status = "complete" if complete else "failed" if failed else "cancelled"
            finished = await store.finish(
                self.db,
                msg.id,
                holder=self.holder,
                attempt=attempt,
                status=status,
                content=text,
                error_type=error.error_type if failed and error else None,
                error_message=error.message if failed and error else None,
                usage=gen.usage if complete else None,
                sources=sources if complete else None,
                finish_reason=gen.finish_reason if complete else None if failed else "cancelled",
            )
            if finished is not None:
                # Only the side whose compare-and-set won speaks for the message.
                await publish_stored_final(self.bus, finished.message)
                return f"failed ({finished.message.error_type})" if failed else status, finished
            return "lost its lease", None
        finally:
            if gen.pump is not None and not gen.pump.done():
                gen.pump.cancel()
            self.running.pop(msg.id, None)

    # control -------------------------------------------------------------------------
    async def _on_control(self, body: bytes) -> None:
        try:
            command = parse_control(body)
        except ValidationError:
            log.warning("ignored a control message that does not parse: %r", body[:200])
            return
        gen = self.running.get(command.message_id)
        if gen is None:
            if isinstance(command, CancelCommand):
                now = time.monotonic()
                self._early_cancels[command.message_id] = now
                for mid, at in list(self._early_cancels.items()):
                    if now - at > 30:
                        del self._early_cancels[mid]
            return
        if isinstance(command, CancelCommand):
            gen.stop("user")
        elif isinstance(command, TextRequest):
            await self.bus.publish_event(
                node_pattern(command.reply_to).replace("*", "text_reply"),
                event_body(
                    "text_reply",
                    {
                        "request_id": command.request_id,
                        "message_id": str(gen.message_id),
                        "attempt": gen.attempt,
                        "text": gen.stream.text(),
                    },
                ),
            )

    def current_text(self, message_id: uuid.UUID) -> tuple[int, str] | None:
        """(attempt, text so far) of an answer generated in this process."""
        gen = self.running.get(message_id)
        return (gen.attempt, gen.stream.text()) if gen is not None else None

    def cancel_local(self, message_id: uuid.UUID) -> bool:
        gen = self.running.get(message_id)
        if gen is None:
            return False
        gen.stop("user")
        return True

    # dead letters ----------------------------------------------------------------------
    async def _on_dead(self, delivery: JobDelivery) -> None:
        """A job that ran out of deliveries: its answer fails as ``worker_lost``."""
        job = await parse_dead_letter(self.bus, delivery, ChatJob)
        if job is None:
            return
        await self._wait_lease_gone(job.message_id)
        ended = await store.end_unclaimed(
            self.db,
            job.message_id,
            status="failed",
            from_statuses=store.ACTIVE,
            error_type="worker_lost",
            error_message="the worker generating this answer was lost",
            expired_lease_only=True,
        )
        if ended is not None:
            await publish_stored_final(self.bus, ended)
            await self.kick(ended.session_id)
        await delivery.ack()

    async def _wait_lease_gone(self, message_id: uuid.UUID) -> None:
        for _ in range(100):
            state = await store.lease_state(self.db, message_id)
            if state is None or state[0] != "streaming" or state[2] is None:
                return
            wait = (state[2] - utcnow()).total_seconds()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait + 0.05, self.settings.lease_s))

    # background loops --------------------------------------------------------------------
    async def _checkpoint_loop(self) -> None:
        """Each answer is checkpointed once per interval, in the phase its start gave it.

        Answers that start over a second are then stored a few at a time, up to ten times
        a second, rather than all at once: one statement for 200 answers held the worker
        for ~4 ms and PostgreSQL for ~20 ms, once a second, while every stream waited.
        """
        interval = self.settings.checkpoint_interval_s
        while True:
            now = time.monotonic()
            due = min((g.checkpoint_due for g in self.running.values()), default=now + interval)
            await asyncio.sleep(max(interval / 10, due - now))
            await self.checkpoint_once()

    async def checkpoint_once(self, now: float | None = None) -> None:
        """Store the text and renew the lease of each answer whose checkpoint is due."""
        now = time.monotonic() if now is None else now
        interval = self.settings.checkpoint_interval_s
        texts: dict[uuid.UUID, str | None] = {}
        for gen in list(self.running.values()):
            if gen.checkpoint_due > now:
                continue
            gen.checkpoint_due += interval
            if gen.checkpoint_due <= now:  # fell behind: keep the interval from now on
                gen.checkpoint_due = now + interval
            texts[gen.message_id] = None
            if gen.stream.offset != gen.checkpointed_len or len(gen.stream.parts) > 1:
                text = gen.stream.text()
                if len(text) != gen.checkpointed_len:
                    gen.checkpointed_len = len(text)
                    texts[gen.message_id] = text
        if not texts:
            return
        try:
            await store.checkpoint(self.db, self.holder, self.settings.lease_s, texts)
        except Exception:
            log.warning("checkpoint failed", exc_info=True)

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.warning("sweep failed", exc_info=True)
            await asyncio.sleep(self.settings.sweep_interval_s)

    async def sweep_once(self) -> int:
        """Publish jobs that may have been lost: a crash between store and publish, or a
        worker that died under its lease. Duplicates are harmless."""
        from datetime import timedelta

        cutoff = utcnow() - timedelta(seconds=self.settings.pending_grace_s)
        stale = await store.stale_messages(self.db, cutoff)
        for message_id, session_id in stale:
            if message_id in self.running:
                continue
            await publish_chat_job(self.bus, message_id, session_id)
        return len(stale)
