"""A case in the store, for tests below the e2e layer."""

from __future__ import annotations

from bridge.db.store import Store


async def case(store: Store, case_id: str) -> str:
    """A live case ``case_id`` of the Bürgerbüro; returns its id."""
    await store.create_case(
        case_id=case_id,
        reference_prefix="BC",
        department="buergerbuero",
        topic=None,
        language="de",
        citizen_name="Eva",
        ghost_mxid=f"@bc_{case_id}:test",
        state="live",
    )
    return case_id
