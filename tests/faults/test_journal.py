"""The local journal: durable lines, each replayed into the database once; a line cut short by a
killed worker is skipped; a segment still being written is left alone; full or unwritable, it
says so."""

from __future__ import annotations

import fcntl
import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.store import AuditPolicy, Faults, JournalUnavailable, Store
from service.store.invocations import to_journal
from service.store.schema import Invocation
from service.store.store import INVOCATION
from tests.support.store_records import invocation


@pytest.fixture
def store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.from_url(url, AuditPolicy(secret="s"), Faults(journal_dir=tmp_path / "journal"))
    store.migrate()
    yield store
    store.close()


def audited(store: Store) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Invocation)).scalar_one()


def journalled(store: Store, key: str, hook_instance: str) -> None:
    """A journalled call whose card uuid is derived from its hookInstance (cards are unique)."""
    record = invocation(hook_instance=hook_instance)
    card = replace(record.decisions[0], card_uuid=f"card-{hook_instance}")
    record = replace(record, decisions=(card, *record.decisions[1:]))
    store.journal.append(INVOCATION, key, to_journal(record, store.policy))


def segments(store: Store) -> list[Path]:
    return sorted(store.journal.directory.glob("*.jsonl"))


def test_journalled_records_are_replayed_once(store: Store) -> None:
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")
    journalled(store, "b" * 32, "c0a8e3c2-0000-4000-8000-000000000002")
    assert store.journal.depth() == 2
    assert store.replay() == 2
    assert store.replay() == 0
    assert (audited(store), store.journal.depth(), segments(store)) == (2, 0, [])


def test_a_record_whose_write_landed_late_is_not_written_twice(store: Store) -> None:
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")
    store.replay()
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")  # the same key again
    store.replay()
    assert audited(store) == 1


def test_a_line_cut_short_by_a_killed_worker_is_skipped_and_the_rest_replayed(store: Store) -> None:
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")
    [segment] = segments(store)
    whole = segment.read_bytes()
    with segment.open("ab") as handle:
        handle.write(whole[: len(whole) // 2])  # a second record, killed halfway through
    assert store.replay() == 1
    assert audited(store) == 1
    assert segments(store) == []


def test_the_journal_keeps_no_more_of_the_patient_than_the_audit_policy(store: Store) -> None:
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")
    [segment] = segments(store)
    assert b"patient-ces-1" not in segment.read_bytes()  # hashed under the "hash" policy
    store.replay()
    with store.engine.connect() as connection:
        row = connection.execute(select(Invocation.patient_id, Invocation.patient_key)).one()
    assert row == (None, store.patient_key("patient-ces-1"))


def test_a_line_whose_content_was_altered_is_skipped(store: Store) -> None:
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")
    [segment] = segments(store)
    segment.write_bytes(segment.read_bytes().replace(b"cauda-equina", b"hip-pattern-xx"))
    assert store.replay() == 0
    assert audited(store) == 0


def test_a_segment_being_written_is_left_for_a_later_round(store: Store) -> None:
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")
    [segment] = segments(store)
    fd = os.open(segment, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the writing process holds it mid-append
    try:
        assert store.replay() == 0
        assert audited(store) == 0
    finally:
        os.close(fd)
    assert store.replay() == 1
    assert audited(store) == 1


def test_a_record_the_database_refuses_is_set_aside_and_the_others_still_replayed(store: Store) -> None:
    journalled(store, "a" * 32, "c0a8e3c2-0000-4000-8000-000000000001")
    clash = invocation(hook_instance="c0a8e3c2-0000-4000-8000-000000000002")
    store.journal.append(INVOCATION, "b" * 32, to_journal(clash, store.policy))
    store.record_invocation(invocation(hook_instance="c0a8e3c2-0000-4000-8000-000000000003"))
    # The second journalled record repeats a card uuid already in the audit trail: it can never go in.
    assert store.replay() == 1
    assert audited(store) == 2
    assert store.journal.depth() == 0
    assert [p.name for p in store.journal.directory.glob("rejected*")] == ["rejected.ndjson"]


def test_a_full_journal_refuses_and_one_with_room_takes_the_record(tmp_path: Path) -> None:
    record = to_journal(invocation(), AuditPolicy(secret="s"))
    tiny = Faults(journal_dir=tmp_path / "j", journal_max_bytes=100)
    small = Store.from_url(f"sqlite:///{tmp_path / 'a.db'}", faults=tiny)
    roomy = Store.from_url(f"sqlite:///{tmp_path / 'b.db'}", faults=Faults(journal_dir=tmp_path / "j"))
    with pytest.raises(JournalUnavailable, match="journal full"):
        small.journal.append(INVOCATION, "a" * 32, record)
    roomy.journal.append(INVOCATION, "a" * 32, record)
    assert (small.journal.depth(), roomy.journal.depth()) == (0, 1)
    assert not small.journal.writable()


def test_an_unwritable_journal_refuses(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = Store.from_url(f"sqlite:///{tmp_path / 'a.db'}", faults=Faults(journal_dir=blocker))
    with pytest.raises(JournalUnavailable, match="not writable"):
        store.journal.append(INVOCATION, "a" * 32, to_journal(invocation(), store.policy))
    assert not store.journal.writable()
