"""What the debugger glue remembers between prompts, in one place.

One instance per process (``STATE``): there is one pdb class to hook and one set of
globals that ``pt repatch`` changes, whichever debugger instance asked. Tests can reset it
with ``STATE.reset()`` (only when nothing is installed or re-applied).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    from ._hooks import _Installed
    from ._repatch import _Reapplied

__all__ = ["MARK", "STATE"]

#: set on every function we put into a debugger class (so we never wrap ours twice, and
#: can tell our ``do_pt`` from someone else's)
MARK: Final = "__patchtrace__"


@final
class _State:
    __slots__ = ("atexit_registered", "depth", "installed", "pending", "quit_leaks",
                 "reapplied", "root", "said_not_stopping")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: the directory the run started in (paths are shown relative to it), taken at the
        #: first install() with our own reference to os.getcwd
        self.root: str | None = None
        #: the debugger classes we changed, and what each attribute was before
        self.installed: list[_Installed] = []
        #: how many debugger interactions are running (nested: a prompt inside a prompt)
        self.depth = 0
        #: install() is waiting for pdb to be imported
        self.pending = False
        #: bindings re-applied by ``pt repatch`` and not yet restored
        self.reapplied: list[_Reapplied] = []
        #: restore() is registered with atexit (once)
        self.atexit_registered = False
        #: the user quit a stop at a leak: stop at no further leak
        self.quit_leaks = False
        #: "not stopping at leaks: stdin is not a terminal" was said
        self.said_not_stopping = False


STATE: Final = _State()
