"""The app fills vectors saves left pending in a worker thread, and says how many wait."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from tests.tui.conftest import SIZE, fixed_records, make_app, save_records, settle


def _save_pending(settings: Any) -> None:
    """Save the fixed records with their vectors left pending (as the local model's saves),
    by another Store, as a script's --save would."""
    from store.store import Store

    with Store.open(settings.model_copy(update={"embed_on_save": False})) as other:
        save_records(other, fixed_records())
        assert other.pending_vector_count() == len(fixed_records())
        _ = other.vectors.scrubber  # the store's PII key is this one


def _status(app: Any) -> str:
    return str(app.screen.query_one("#list-status").render())


async def test_the_app_fills_pending_vectors_in_the_background(empty_store: Any,
                                                               tui_settings: Any) -> None:
    _save_pending(tui_settings)
    app = make_app(empty_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert empty_store.pending_vector_count() == 0
        assert app.vectors_pending.filled == len(fixed_records())
        assert app.vectors_pending.pending == 0
        assert "vectors pending" not in _status(app)
    assert empty_store.verify_vectors().in_step


async def test_the_status_line_says_how_many_vectors_wait_and_why(empty_store: Any,
                                                                  tui_settings: Any) -> None:
    """With another PII key than the store's the filler cannot embed: the vectors stay pending
    (the search finds those analyses by words and indicators), and the status line says so."""
    from store.store import Store

    _save_pending(tui_settings)
    other_key = tui_settings.model_copy(update={"pii_key": SecretStr("another key " * 4)})
    with Store.open(other_key) as store:
        app = make_app(store, other_key)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            status = _status(app)
            assert f"vectors pending: {len(fixed_records())} (not filling: the PII" in status
            assert store.pending_vector_count() == len(fixed_records())
    assert empty_store.verify_vectors().pending == len(fixed_records())


async def test_the_app_does_not_fill_without_the_flag(empty_store: Any,
                                                      tui_settings: Any) -> None:
    _save_pending(tui_settings)
    app = make_app(empty_store, tui_settings, fill_vectors=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert empty_store.pending_vector_count() == len(fixed_records())
