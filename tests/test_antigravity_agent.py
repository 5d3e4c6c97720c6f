"""The real Antigravity ``Agent`` (google-antigravity, its bundled offline harness)
driving this package's triggers, against a fake model on loopback.

Each test runs one agent session in a subprocess — this file run as a program,
``python tests/test_antigravity_agent.py MODE LOOP BASE_URL ROOT``, on the test's
own kind of event loop — so that "the session ends cleanly" is checked as exit
code 0 with nothing on stderr. The session is configured as a user would:
``Agent(LocalAgentConfig(models=[...], triggers=[...], env={"HOME": ...}))``, a
TEXT and an IMAGE ``ModelTarget`` pointing at the fake model, and everything the
harness writes kept under the test's ``tmp_path``. The modes:

- ``sdk``: our triggers (``every``, ``after``, a 6-field ``cron``,
  ``on_file_change``, a plain coroutine) in ``LocalAgentConfig(triggers=[...])``,
  run by the SDK's own ``TriggerRunner``, which ``Agent`` starts.
- ``ours``: the same triggers, plus one that uses ``ctx.send_when_idle``, run by
  ``agent_triggers.TriggerRunner`` over ``agent.conversation.connection`` (the
  connection the SDK hands its own runner); once their messages have reached the
  model, an ``agent.chat()`` turn keeps the agent busy.
- ``interrupt``: an ``every`` trigger with ``delivery=INTERRUPT`` under our runner
  over the agent's connection; while a turn is in flight (held at the model),
  ``runner.run_now`` makes its call: ``deliver`` awaits the connection's own
  ``cancel()`` and then sends, and the message reaches the model.

The fake model (``FakeModel``, threads of its own in the test process) answers each
``POST .../models/NAME:streamGenerateContent?alt=sse`` with one SSE event (a
``GenerateContentResponse`` with one text candidate, finishReason STOP) and keeps
every request body, so the tests assert what reached the model: each trigger's
distinctive text in some request body. The harness may call the model more than
once for one trigger's turn, so nothing here counts calls. The first request of the
busy turn is held until the test releases it: the turn stays in flight for as long
as the test needs, with no timing assumed.

The session and the test talk over the subprocess's stdout (``started``,
``waiting-for-idle``, then ``report {json}`` once the agent has stopped) and stdin
(``busy``: start the busy turn; closed: end the session). Every wait is bounded and
generous; none stands in for "it has started".
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import AsyncGenerator, Awaitable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest

from conftest import ASYNCIO_BACKENDS, antigravity_sdk_missing

if reason := antigravity_sdk_missing():
    pytest.skip(reason, allow_module_level=True)


from google.antigravity import (  # pyright: ignore[reportMissingTypeStubs]
    Agent,
    LocalAgentConfig,
    types,
)

import agent_triggers as at


# The Antigravity SDK is asyncio's (its Agent, its runner): these sessions run on
# asyncio and uvloop; trio has no Antigravity to drive.
@pytest.fixture(params=ASYNCIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


# What each trigger sends: its message must reach the model.
MARKERS = (
    "tick-every 1",
    "tick-every 2",
    "tick-after",
    "tick-cron 1",
    "tick-cron 2",
    "tick-file note.txt",
    "tick-coroutine",
)
# What the send_when_idle trigger sends, once the busy turn is over.
IDLE_MARKER = "tick-idle"
# What the INTERRUPT trigger sends, into a busy agent.
INTERRUPT_MARKER = "tick-interrupt"
# The prompt of the busy turn: the fake model holds its first request.
BUSY_PROMPT = "busy-prompt"
# The fake model's reply to every request.
MODEL_REPLY = "model-reply"
# Bound on each wait (the whole test is bounded by pytest's 60 s timeout).
WAIT = 30.0


# --- the agent session (the subprocess) -----------------------------------------------


class Sends(Protocol):
    """What the triggers here use of their context: ours and the SDK's both have it."""

    def send(self, content: str, /) -> Awaitable[None]: ...


def users_triggers(inbox: Path, began: asyncio.Event) -> list[Any]:
    """A trigger of each kind. Each sends its marker on its first call (``every`` and
    ``cron`` on their first two: ``tick-every 1``, ``tick-every 2``), then stays
    quiet, so the agent can settle before the busy turn. ``began`` is set by the last
    one's first step: the SDK's runner starts its triggers as tasks in this order, so
    by then ``on_file_change``'s first step, which sets up its watch, has run too."""
    calls: dict[str, int] = {}

    def nth_call(marker: str) -> int:
        calls[marker] = calls.get(marker, 0) + 1
        return calls[marker]

    async def tick_every(ctx: Sends) -> None:
        if (n := nth_call("tick-every")) <= 2:
            await ctx.send(f"tick-every {n}")

    async def tick_after(ctx: Sends) -> None:
        await ctx.send("tick-after")

    async def tick_cron(ctx: Sends) -> None:
        if (n := nth_call("tick-cron")) <= 2:
            await ctx.send(f"tick-cron {n}")

    async def tick_file(ctx: Sends, changes: list[at.FileChange]) -> None:
        if nth_call("tick-file") == 1:
            names = " ".join(sorted(Path(change.path).name for change in changes))
            await ctx.send(f"tick-file {names}")

    async def tick_coroutine(ctx: Sends) -> None:
        began.set()
        await ctx.send("tick-coroutine")

    return [
        at.every(0.5, tick_every),
        at.after(0.5, tick_after),
        at.cron("* * * * * *", tick_cron),
        at.on_file_change(inbox, tick_file),
        tick_coroutine,
    ]


def agent_config(base_url: str, root: Path, triggers: list[Any]) -> Any:
    """The session's config: a TEXT and an IMAGE model on the fake endpoint, and all
    the harness writes (its state under ``$HOME``, saves, app data) under ``root``."""
    endpoint = types.GeminiAPIEndpoint(base_url=base_url, api_key="x")
    for folder in ("home", "save", "app-data", "workspace"):
        (root / folder).mkdir(exist_ok=True)
    return LocalAgentConfig(
        models=[
            types.ModelTarget(name="fake-text", types=[types.ModelType.TEXT], endpoint=endpoint),
            types.ModelTarget(name="fake-image", types=[types.ModelType.IMAGE], endpoint=endpoint),
        ],
        triggers=triggers,
        env={"HOME": str(root / "home")},
        save_dir=str(root / "save"),
        app_data_dir=str(root / "app-data"),
        workspaces=[str(root / "workspace")],
    )


def record_sends(connection: Any) -> list[tuple[str, bool]]:
    """Note, for each message sent into ``connection``, whether the agent was idle
    then: its ``send_trigger_notification`` wrapped on the instance (our runner looks
    the method up at each send)."""
    sends: list[tuple[str, bool]] = []
    send = connection.send_trigger_notification

    async def recording_send(content: str) -> None:
        sends.append((content, bool(connection.is_idle)))
        await send(content)

    connection.send_trigger_notification = recording_send
    return sends


def announce(line: str) -> None:
    print(line, flush=True)


async def from_the_test() -> str:
    """The test's next line on our stdin; ``""`` once it has closed it (end the session)."""
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


def record_cancels(connection: Any) -> list[bool]:
    """Note, for each ``cancel()`` of ``connection``, whether the agent was idle then
    (wrapped on the instance, as ``record_sends``)."""
    cancels: list[bool] = []
    cancel = connection.cancel

    async def recording_cancel() -> None:
        cancels.append(bool(connection.is_idle))
        await cancel()

    connection.cancel = recording_cancel
    return cancels


async def interrupt_session(base_url: str, root: Path) -> dict[str, Any]:
    """The ``interrupt`` mode: an INTERRUPT delivery made by ``run_now`` mid-turn."""
    report: dict[str, Any] = {}
    async with Agent(agent_config(base_url, root, [])) as agent:
        connection = agent.conversation.connection
        sends = record_sends(connection)
        cancels = record_cancels(connection)

        async def interrupt(ctx: at.TriggerContext) -> None:
            await ctx.deliver(INTERRUPT_MARKER)

        trig = at.every(3600, interrupt, name="interrupt", delivery=at.TriggerDelivery.INTERRUPT)
        async with at.TriggerRunner([trig], connection) as runner:
            announce("started")
            report["go"] = await from_the_test()
            await agent.chat(BUSY_PROMPT)
            report["is_idle_after_chat"] = repr(connection.is_idle)
            announce("busy")
            report["interrupt"] = await from_the_test()
            await runner.run_now(trig)
            (stats,) = runner.stats()
            report["calls"], report["failures"] = stats.calls, stats.failures
            announce("interrupted")
            report["end"] = await from_the_test()
    report["cancels"] = cancels
    report["sends"] = [content for content, _ in sends]
    return report


async def agent_session(mode: str, base_url: str, root: Path) -> dict[str, Any]:
    """One session in ``mode`` (see the module docstring); returns what it observed."""
    if mode == "interrupt":
        return await interrupt_session(base_url, root)
    report: dict[str, Any] = {}
    began = asyncio.Event()
    inbox = root / "inbox"
    inbox.mkdir(exist_ok=True)
    triggers = users_triggers(inbox, began)
    if mode == "sdk":
        async with Agent(agent_config(base_url, root, triggers)):
            await began.wait()
            announce("started")
            report["end"] = await from_the_test()
        return report

    async with Agent(agent_config(base_url, root, [])) as agent:
        connection = agent.conversation.connection
        sends = record_sends(connection)
        busy = asyncio.Event()
        waiting = asyncio.Event()

        async def tick_idle(ctx: at.TriggerContext) -> None:
            await busy.wait()
            report["is_idle_in_turn"] = repr(ctx.is_idle)
            waiting.set()
            await ctx.send_when_idle(IDLE_MARKER)

        async with at.TriggerRunner([*triggers, tick_idle], connection):
            await began.wait()
            announce("started")
            # The test says when the other triggers' turns are done; the harness fails
            # a prompt sent before it has taken in the previous input.
            report["go"] = await from_the_test()
            await settled(connection)
            # chat() returns once the prompt is sent: the turn is under way.
            await agent.chat(BUSY_PROMPT)
            report["is_idle_after_chat"] = repr(connection.is_idle)
            busy.set()
            await waiting.wait()
            announce("waiting-for-idle")
            report["end"] = await from_the_test()
    report["idle_sends"] = [idle for content, idle in sends if content == IDLE_MARKER]
    return report


async def settled(connection: Any) -> None:
    """Until the agent is idle (polled: ``wait_for_idle()`` would take steps off its queue)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not connection.is_idle:
        if loop.time() >= deadline:
            raise TimeoutError(f"the agent was still busy after {WAIT} s")
        await asyncio.sleep(0.05)  # the poll's pace


def agent_process_main(mode: str, loop: str, base_url: str, root: str) -> None:
    session = agent_session(mode, base_url, Path(root))
    if loop == "uvloop":
        import uvloop

        report = uvloop.run(session)
    else:
        report = asyncio.run(session)
    announce(f"report {json.dumps(report)}")


# --- the fake model (the test process) --------------------------------------------------


class FakeModel:
    """A Gemini API on loopback, served from threads of its own.

    Answers every POST with one SSE event (one text candidate, ``MODEL_REPLY``,
    finishReason STOP). Keeps every request (path, body). Holds the first request carrying
    ``BUSY_PROMPT`` until ``release`` is set.
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str]] = []
        self._held = False
        self._held_answered_after: int | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-model")
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def receive(self, path: str, body: str) -> str:
        """Keep the request; hold it if it is the busy turn's first; the reply."""
        with self._lock:
            self._requests.append((path, body))
            hold = BUSY_PROMPT in body and not self._held
            self._held = self._held or hold
        if hold:
            self.release.wait(timeout=WAIT)
            with self._lock:
                self._held_answered_after = len(self._requests)
        return MODEL_REPLY

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self._requests]

    def saw(self, *texts: str) -> bool:
        """Whether each of ``texts`` is in some request body."""
        return all(self.first_request_with(text) is not None for text in texts)

    def first_request_with(self, text: str) -> int | None:
        """The index of the first request whose body carries ``text``."""
        with self._lock:
            return next((i for i, (_, body) in enumerate(self._requests) if text in body), None)

    @property
    def held_answered_after(self) -> int | None:
        """How many requests had come in when the held request was answered."""
        with self._lock:
            return self._held_answered_after

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=WAIT)


def _handler_for(model: FakeModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            reply = model.receive(self.path, body)
            candidate = {
                "content": {"role": "model", "parts": [{"text": reply}]},
                "finishReason": "STOP",
                "index": 0,
            }
            data = f"data: {json.dumps({'candidates': [candidate]})}\r\n\r\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows what the tests assert

    return Handler


@pytest.fixture
def fake_model() -> Iterator[FakeModel]:
    model = FakeModel()
    yield model
    model.close()


# --- driving the session from the test ----------------------------------------------------


class AgentProcess:
    """The session subprocess, as the test sees it."""

    def __init__(self, process: asyncio.subprocess.Process, model: FakeModel) -> None:
        self.process = process
        self.model = model

    async def expect(self, line: str) -> None:
        """Wait (bounded) for the session to print ``line``."""
        assert self.process.stdout is not None
        try:
            got = await asyncio.wait_for(self.process.stdout.readline(), WAIT)
        except asyncio.TimeoutError:
            got = b"(nothing: timed out)"
        if got.decode().strip() != line:
            await self.fail(f"expected {line!r} from the session, got {got!r}")

    async def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()

    async def until_seen(self, *texts: str) -> None:
        """Wait (bounded, polled every 50 ms) until each of ``texts`` is in some request
        body the model received."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not self.model.saw(*texts):
            if loop.time() >= deadline:
                missing = [text for text in texts if not self.model.saw(text)]
                await self.fail(
                    f"after {WAIT} s, {missing} had not reached the model "
                    f"({len(self.model.paths)} requests)"
                )
            await asyncio.sleep(0.05)  # the poll's pace

    async def finish(self) -> tuple[int | None, str, dict[str, Any]]:
        """End the session (close its stdin): its exit code, stderr and report."""
        out, err = await asyncio.wait_for(self.process.communicate(b""), WAIT)
        lines = out.decode().splitlines()
        last = lines[-1] if lines else ""
        report: dict[str, Any] = {}
        if last.startswith("report "):
            report = json.loads(last[len("report ") :])
        return self.process.returncode, err.decode(), report

    async def fail(self, message: str) -> NoReturn:
        """Fail the test with ``message`` and what the (killed) session printed."""
        self.process.kill()
        out, err = await self.process.communicate(b"")
        pytest.fail(f"{message}\nsession stdout:\n{out.decode()}\nsession stderr:\n{err.decode()}")


@asynccontextmanager
async def agent_process(
    mode: str, model: FakeModel, root: Path
) -> AsyncGenerator[AgentProcess, None]:
    """The session in ``mode``, on this test's kind of event loop; killed if left running."""
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        mode,
        "uvloop" if loop == "uvloop" else "asyncio",
        model.base_url,
        str(root),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=root,
    )
    try:
        yield AgentProcess(process, model)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate(b"")  # b"": its stdin closed too


# --- the tests -------------------------------------------------------------------------


async def test_triggers_in_the_agent_config_reach_the_model_under_the_sdks_runner(
    fake_model: FakeModel, tmp_path: Path
) -> None:
    async with agent_process("sdk", fake_model, tmp_path) as session:
        await session.expect("started")
        (tmp_path / "inbox" / "note.txt").write_text("changed")
        await session.until_seen(*MARKERS)
        code, err, report = await session.finish()
    assert (code, err) == (0, "")
    assert report == {"end": ""}
    # What reached the model came as the harness calls the configured text model.
    assert fake_model.paths
    assert all(
        path.endswith("/models/fake-text:streamGenerateContent?alt=sse")
        for path in fake_model.paths
    ), set(fake_model.paths)


async def test_our_runner_over_the_agents_connection_reaches_the_model_and_waits_for_idle(
    fake_model: FakeModel, tmp_path: Path
) -> None:
    async with agent_process("ours", fake_model, tmp_path) as session:
        await session.expect("started")
        (tmp_path / "inbox" / "note.txt").write_text("changed")
        await session.until_seen(*MARKERS)
        await session.tell("busy")
        await session.expect("waiting-for-idle")
        # The busy turn's request is at the model, held: the turn is in flight, and
        # the send_when_idle trigger is waiting.
        await session.until_seen(BUSY_PROMPT)
        assert not fake_model.saw(IDLE_MARKER), (
            "send_when_idle's message reached the model mid-turn"
        )
        fake_model.release.set()
        await session.until_seen(IDLE_MARKER)
        code, err, report = await session.finish()
    assert (code, err) == (0, "")
    # During the turn the agent was busy: ctx.is_idle False (a bool), as the connection's.
    assert report["is_idle_after_chat"] == "False"
    assert report["is_idle_in_turn"] == "False"
    # send_when_idle sent once, into an idle agent...
    assert report["idle_sends"] == [True]
    # ...and its message reached the model only once the held turn was answered.
    first_idle = fake_model.first_request_with(IDLE_MARKER)
    answered_after = fake_model.held_answered_after
    assert first_idle is not None
    assert answered_after is not None
    assert first_idle >= answered_after


async def test_an_interrupt_delivery_cancels_the_agents_turn_then_sends(
    fake_model: FakeModel, tmp_path: Path
) -> None:
    async with agent_process("interrupt", fake_model, tmp_path) as session:
        await session.expect("started")
        await session.tell("go")
        await session.expect("busy")
        # The turn's request is at the model, held: the agent is mid-turn.
        await session.until_seen(BUSY_PROMPT)
        await session.tell("interrupt")
        await session.expect("interrupted")
        await session.until_seen(INTERRUPT_MARKER)
        fake_model.release.set()
        code, err, report = await session.finish()
    assert (code, err) == (0, "")
    assert report["is_idle_after_chat"] == "False"
    # cancel() was awaited once, on the busy agent, before the one send.
    assert report["cancels"] == [False]
    assert report["sends"] == [INTERRUPT_MARKER]
    assert (report["calls"], report["failures"]) == (1, 0)


if __name__ == "__main__":
    agent_process_main(*sys.argv[1:])
