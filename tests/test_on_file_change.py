"""docs/contract.md §6: on_file_change — OS-level watching, debounced batches of FileChange."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import anyio
import pytest

from agent_triggers import (
    FileChange,
    FileChangeKind,
    TriggerContext,
    TriggerDelivery,
    TriggerRunner,
    on_file_change,
)

from conftest import FakeConnection, cancelled, error_records, stays_false, wait_for


class Recorder:
    """An on_file_change callback that keeps every batch it is called with."""

    def __init__(self) -> None:
        self.batches: list[list[FileChange]] = []
        self.contexts: list[object] = []

    async def __call__(self, ctx: object, changes: list[FileChange]) -> None:
        self.contexts.append(ctx)
        self.batches.append(changes)

    @property
    def changes(self) -> list[FileChange]:
        return [change for batch in self.batches for change in batch]

    def saw(self, kind: FileChangeKind, path: Path) -> bool:
        return FileChange(kind, str(path)) in self.changes


# --- construction --------------------------------------------------------------------


def test_defaults_and_attributes(tmp_path: Path) -> None:
    trig = on_file_change(str(tmp_path), Recorder())
    assert trig.name == trig.__name__ == f"on_file_change_{tmp_path.name}"
    assert trig.path == str(tmp_path)
    assert trig.recursive is True
    assert trig.debounce == pytest.approx(0.05)
    assert trig.delivery is TriggerDelivery.WAIT_IDLE


def test_path_like_relative_paths_and_options(tmp_path: Path) -> None:
    trig = on_file_change(tmp_path / "inbox", Recorder(), recursive=False, debounce=0, name="x")
    assert trig.path == str(tmp_path / "inbox")
    assert (trig.name, trig.recursive, trig.debounce) == ("x", False, 0.0)
    relative = on_file_change("some/dir", Recorder())
    assert relative.path == os.path.join(os.getcwd(), "some", "dir")
    assert relative.name == "on_file_change_dir"


@pytest.mark.parametrize("path", [3, None, b"/tmp"])
def test_a_path_that_is_not_a_str_path_is_a_type_error(path: object) -> None:
    with pytest.raises(TypeError, match="path"):
        on_file_change(path, Recorder())  # type: ignore[arg-type]


def test_bad_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="recursive"):
        on_file_change(tmp_path, Recorder(), recursive=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="debounce"):
        on_file_change(tmp_path, Recorder(), debounce=-0.1)
    with pytest.raises(TypeError, match="debounce"):
        on_file_change(tmp_path, Recorder(), debounce="0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback"):
        on_file_change(tmp_path, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        on_file_change("", Recorder())


def test_file_change_is_immutable() -> None:
    change = FileChange(FileChangeKind.ADDED, "/tmp/x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.path = "/tmp/y"  # type: ignore[misc]
    assert FileChangeKind("modified") is FileChangeKind.MODIFIED
    assert {k.name for k in FileChangeKind} == {"ADDED", "MODIFIED", "DELETED"}


# --- under a runner --------------------------------------------------------------------


async def test_create_modify_delete_reach_the_callback(
    tmp_path: Path, connection: FakeConnection
) -> None:
    recorder = Recorder()
    file = tmp_path / "notes.txt"
    async with TriggerRunner([on_file_change(tmp_path, recorder)], connection):
        file.write_text("one")
        await wait_for(lambda: recorder.saw(FileChangeKind.ADDED, file))
        file.write_text("two")
        await wait_for(lambda: recorder.saw(FileChangeKind.MODIFIED, file))
        file.unlink()
        await wait_for(lambda: recorder.saw(FileChangeKind.DELETED, file))
    for change in recorder.changes:
        assert isinstance(change, FileChange)
        assert isinstance(change.kind, FileChangeKind)
        assert os.path.isabs(change.path)
    assert all(isinstance(ctx, TriggerContext) for ctx in recorder.contexts)


async def test_a_change_made_as_soon_as_start_returns_is_seen(
    tmp_path: Path, connection: FakeConnection
) -> None:
    # start() sets the OS watch up before it returns (it used to be set up
    # later, on the runtime: a change made at once was missed in 6 of 20 runs).
    async def change_at_once(folder: Path) -> None:
        file = folder / "x.txt"
        recorder = Recorder()
        async with TriggerRunner([on_file_change(folder, recorder, debounce=0.01)], connection):
            file.write_text("x")
            await wait_for(lambda: recorder.saw(FileChangeKind.ADDED, file))

    for attempt in range(10):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        await change_at_once(folder)


async def test_rename_is_a_deletion_and_an_addition(
    tmp_path: Path, connection: FakeConnection
) -> None:
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("x")
    recorder = Recorder()
    async with TriggerRunner([on_file_change(tmp_path, recorder)], connection):
        old.rename(new)
        await wait_for(
            lambda: (
                recorder.saw(FileChangeKind.DELETED, old)
                and recorder.saw(FileChangeKind.ADDED, new)
            )
        )


async def test_nested_directories_follow_recursive(
    tmp_path: Path, connection: FakeConnection
) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    deep, top = nested / "deep.txt", tmp_path / "top.txt"
    everything, flat = Recorder(), Recorder()
    triggers = [
        on_file_change(tmp_path, everything),
        on_file_change(tmp_path, flat, recursive=False),
    ]
    async with TriggerRunner(triggers, connection):
        deep.write_text("x")
        top.write_text("x")
        await wait_for(lambda: everything.saw(FileChangeKind.ADDED, deep))
        await wait_for(lambda: flat.saw(FileChangeKind.ADDED, top))
        await anyio.sleep(0.2)  # time for a wrong report of `deep` to show up (a negative)
    assert not any(change.path == str(deep) for change in flat.changes)


async def test_a_path_created_after_start_is_watched_for(
    tmp_path: Path, connection: FakeConnection
) -> None:
    target = tmp_path / "later" / "inbox"
    recorder = Recorder()
    async with TriggerRunner([on_file_change(target, recorder)], connection):
        target.mkdir(parents=True)
        await wait_for(lambda: recorder.saw(FileChangeKind.ADDED, target))
        mail = target / "mail.eml"
        mail.write_text("hello")
        await wait_for(lambda: recorder.saw(FileChangeKind.ADDED, mail))


async def test_a_burst_of_writes_is_coalesced_with_nothing_lost(
    tmp_path: Path, connection: FakeConnection
) -> None:
    recorder = Recorder()
    paths = [tmp_path / f"f{i}.txt" for i in range(1000)]
    async with TriggerRunner([on_file_change(tmp_path, recorder, debounce=0.2)], connection):
        for path in paths:
            path.write_text("x")
        wanted = {str(p) for p in paths}
        await wait_for(
            lambda: wanted <= {c.path for c in recorder.changes if c.kind is FileChangeKind.ADDED},
            timeout=10,
        )
    assert len(recorder.batches) <= 20, f"1000 writes came in {len(recorder.batches)} calls"
    assert {c.path for c in recorder.changes} <= wanted


async def test_the_watch_is_released_on_stop(tmp_path: Path, connection: FakeConnection) -> None:
    recorder = Recorder()
    runner = TriggerRunner([on_file_change(tmp_path, recorder)], connection)
    await runner.start()
    (tmp_path / "during.txt").write_text("x")
    await wait_for(lambda: recorder.batches)
    await runner.stop()
    calls = len(recorder.batches)
    (tmp_path / "after.txt").write_text("x")
    assert await stays_false(lambda: len(recorder.batches) > calls, duration=0.3)


async def test_a_raising_callback_is_logged_and_watching_goes_on(
    tmp_path: Path, connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def flaky(ctx: TriggerContext, changes: list[FileChange]) -> None:
        calls.append(len(changes))
        if len(calls) == 1:
            raise RuntimeError("first batch rejected")

    async with TriggerRunner([on_file_change(tmp_path, flaky, name="watch")], connection):
        (tmp_path / "one.txt").write_text("x")
        await wait_for(lambda: calls)
        await anyio.sleep(0.2)  # past the debounce window: the next change is a new batch
        (tmp_path / "two.txt").write_text("x")
        await wait_for(lambda: len(calls) >= 2)
    [record] = error_records(caplog)
    assert "watch" in record.getMessage()
    assert "first batch rejected" in record.getMessage()


async def test_the_callback_can_send_with_the_trigger_delivery(
    tmp_path: Path, busy_connection: FakeConnection
) -> None:
    async def relay(ctx: TriggerContext, changes: list[FileChange]) -> None:
        await ctx.deliver(f"{len(changes)} change(s)")

    trig = on_file_change(tmp_path, relay, delivery=TriggerDelivery.SEND_IMMEDIATELY)
    async with TriggerRunner([trig], busy_connection):
        (tmp_path / "x.txt").write_text("x")
        await wait_for(lambda: busy_connection.sent)


# --- on its own -------------------------------------------------------------------------


async def test_trig_ctx_runs_it_as_a_coroutine_with_any_context(tmp_path: Path) -> None:
    recorder = Recorder()
    sentinel = object()
    ended: list[str] = []

    async def watch(scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await on_file_change(tmp_path, recorder)(sentinel)
            except cancelled():
                ended.append("cancelled")
                raise
            ended.append("returned")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch, scope)
        try:
            # The watch is set up when the task first runs, and nothing says when it
            # is (no start() returns): time for that, not a timing assertion.
            await anyio.sleep(0.1)
            (tmp_path / "x.txt").write_text("x")
            await wait_for(lambda: recorder.saw(FileChangeKind.ADDED, tmp_path / "x.txt"))
            assert recorder.contexts[0] is sentinel
        finally:
            scope.cancel()
    assert ended == ["cancelled"], "the watch runs until cancelled"


def test_odd_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert on_file_change(".", Recorder()).name == f"on_file_change_{tmp_path.name}"
    with pytest.raises(ValueError, match="NUL"):
        on_file_change(str(tmp_path / "a\x00b"), Recorder())


async def test_a_file_name_that_is_not_utf8_is_reported_byte_exact(
    tmp_path: Path, connection: FakeConnection
) -> None:
    cafe = tmp_path / os.fsdecode(b"caf\xe9.txt")
    raw = os.fsencode(cafe)
    recorder = Recorder()
    async with TriggerRunner([on_file_change(tmp_path, recorder)], connection):
        cafe.write_bytes(b"x")
        await wait_for(lambda: recorder.changes)
    assert os.fsencode(recorder.changes[0].path) == raw
    assert recorder.changes[0].path == str(cafe)


async def test_a_watched_file_survives_a_save_that_replaces_it(
    tmp_path: Path, connection: FakeConnection
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("v1")
    recorder = Recorder()
    async with TriggerRunner([on_file_change(settings, recorder)], connection):
        temp = tmp_path / ".settings.toml.tmp"
        temp.write_text("v2")
        os.replace(temp, settings)  # how editors save
        await wait_for(lambda: recorder.changes)
        await anyio.sleep(0.2)  # past the debounce window: the next save is a new batch
        settings.write_text("v3")
        await wait_for(lambda: recorder.saw(FileChangeKind.MODIFIED, settings))
    assert {c.path for c in recorder.changes} == {str(settings)}
