"""The base of incidex's screens: failed workers become notifications, never crashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, cast

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from tui.app import IncidexApp


class IncidexScreen(Screen[None]):
    """A screen that reports its workers' errors and lets subclasses tidy up after them."""

    # Actions that move the focus into a text field (/ for a filter or a search). Their
    # bindings are priority bindings, run as the key arrives rather than after it went to the
    # focused widget, and they focus at once (focus_now): so the keys typed or pasted right
    # behind the / land in the field instead of running the screen's own keys. While a text
    # field has the focus they stand aside and the key is typed.
    TYPING_ACTIONS: ClassVar[frozenset[str]] = frozenset()

    @property
    def incidex(self) -> IncidexApp:
        """The app, typed."""
        return cast("IncidexApp", self.app)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No screen action runs once the app is quitting (keys typed after q); actions the
        actor's role forbids are greyed out."""
        from tui.permissions import action_allowed

        if self.incidex.exiting:
            return False
        if action in self.TYPING_ACTIONS and self._typing():
            return False
        return action_allowed(self.incidex.opened_store, action)

    def _typing(self) -> bool:
        focused = self.focused
        return isinstance(focused, Input) or (isinstance(focused, TextArea)
                                              and not focused.read_only)

    def focus_now(self, widget: Widget) -> None:
        """Give widget the focus before the next queued key is handled (Widget.focus waits for
        a refresh, and the keys queued meanwhile would go to the widget focused before)."""
        self.set_focus(widget)

    def show_loading_after(self, widget: Widget, still_waiting: Callable[[], bool],
                           delay: float = 0.3) -> None:
        """Cover widget with a loading indicator if the answer takes longer than delay."""

        def cover() -> None:
            if still_waiting():
                widget.loading = True

        self.set_timer(delay, cover)

    def send_to_clipboard(self, text: str, what: str, fallback: str) -> None:
        """Send text to the terminal's clipboard (OSC 52) and say so without claiming it arrived:
        OSC 52 has no answer, and a terminal (or tmux with set-clipboard off) may drop it."""
        self.app.copy_to_clipboard(text)
        self.notify(f"Sent {what} to the clipboard. Terminals do not confirm this (in tmux it "
                    f"needs set-clipboard on); if it did not arrive, {fallback}.",
                    title="Clipboard", timeout=8)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Report a failed worker and let the screen hide its loading indicators."""
        if event.state == WorkerState.ERROR:
            self.incidex.report_worker_error(event.worker)
        if event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.worker_ended_early(event.worker)

    def worker_ended_early(self, worker: Worker[object]) -> None:
        """Called when a worker failed or was cancelled; hide what it was loading."""
