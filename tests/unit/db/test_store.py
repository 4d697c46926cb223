"""The bridge store behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from bridge.db.engine import migrate
from bridge.db.store import Store


async def _case(store: Store, case_id: str = "c1", ghost: str = "@bc_1:x") -> str:
    case = await store.create_case(
        case_id=case_id,
        reference_prefix="BC",
        department="buergerbuero",
        topic=None,
        language="de",
        citizen_name="Eva",
        ghost_mxid=ghost,
        state="open",
    )
    return case.reference


async def test_references_are_numbered_per_case(store: Store) -> None:
    """Each case gets its own reference BC-<year>-<6 digits>, counting up."""
    first = await _case(store, "c1", "@bc_1:x")
    second = await _case(store, "c2", "@bc_2:x")
    assert first.startswith("BC-") and len(first.split("-")[2]) == 6
    assert int(second.split("-")[2]) == int(first.split("-")[2]) + 1
    assert (await store.get_case("c2")).reference == second


async def test_same_client_id_gives_same_event(store: Store) -> None:
    """A citizen message resent with the same client id is stored once."""
    await _case(store)
    first, created1 = await store.add_event(
        "c1", type="message", sender="citizen", body="Hallo", client_id="m1"
    )
    again, created2 = await store.add_event(
        "c1", type="message", sender="citizen", body="Hallo", client_id="m1"
    )
    assert created1 and not created2
    assert again.seq == first.seq
    assert len(await store.events_after("c1", 0)) == 1


async def test_matrix_event_stored_once(store: Store) -> None:
    """An event seen twice from Synapse (a retried transaction) is kept once."""
    await _case(store)
    for _ in range(2):
        await store.add_event(
            "c1", type="message", sender="staff", body="Guten Tag", matrix_event_id="$e"
        )
    assert [e.body for e in await store.events_after("c1", 0)] == ["Guten Tag"]
    assert await store.known_matrix_event("$e")


async def test_events_after_cursor(store: Store) -> None:
    """Reading after a cursor returns only newer events, in order."""
    await _case(store)
    seqs = []
    for i in range(5):
        ev, _ = await store.add_event("c1", type="message", sender="staff", body=str(i))
        seqs.append(ev.seq)
    rest = await store.events_after("c1", seqs[1])
    assert [e.body for e in rest] == ["2", "3", "4"]


async def test_transaction_saved_once(store: Store) -> None:
    """A transaction id is stored once; a retry is recognised."""
    assert await store.save_transaction("t1", {"events": []})
    assert not await store.save_transaction("t1", {"events": []})
    pending = await store.unprocessed_transactions()
    assert [t.txn_id for t in pending] == ["t1"]
    await store.mark_processed(pending[0].seq)
    assert await store.unprocessed_transactions() == []


async def test_tokens_revoke(store: Store) -> None:
    """A revoked token is marked with its revocation time."""
    await _case(store)
    await store.add_token("c1", "h" * 64, "chat", timedelta(hours=1))
    await store.revoke_tokens("c1")
    token = await store.get_token("h" * 64)
    assert token is not None and token.revoked_at is not None


async def test_migration_refuses_newer_schema(store: Store) -> None:
    """A database from a newer Bürgerchat is refused with advice, not damaged."""
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        await migrate(store.engine)
    except Exception as e:  # noqa: BLE001 - the type is asserted below
        assert type(e).__name__ == "SchemaTooNew"
        assert "newer" in str(e)
    else:
        raise AssertionError("a newer schema was accepted")
