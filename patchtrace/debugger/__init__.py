"""pdb commands and post-mortem helpers: what was patched when this failed?

By the time ``pytest --pdb`` shows a failure, a ``with patch(...)`` block or a ``@patch``
decorator around the failing line has already undone its patch. The ledger remembers: each
undo that ran while an exception propagated carries ``Mutation.unwinding``. This module adds
one debugger command, ``pt``, with subcommands::

    pt patches            patches active now and when the exception was raised, with stacks
    pt history EXPR       every recorded mutation of EXPR (``mod.attr``, ``os.environ['X']``)
    pt why EXPR           the reference chains that keep EXPR's value alive
    pt graph EXPR [FILE]  draw them
    pt holders EXPR       every module, class and default argument bound to EXPR's value
    pt repatch            put back the patches undone while the exception propagated
    pt unpatch            restore exactly what was there before ``pt repatch``
    pt leaks              leaks found so far
    pt help               this list

How the command gets into a debugger: :func:`install` adds ``do_pt``/``complete_pt`` to the
standard library's ``pdb.Pdb`` (found through the MRO, so pytest's wrapper class, pdb++ and
IPython/ipdb, all subclasses of it, inherit it) and wraps its ``interaction`` so that the
exception being debugged is known and re-applied patches are always restored when the prompt
is left (``continue``, ``quit``, ``next``, EOF, an exception). :func:`uninstall` undoes it.
For any other debugger, :func:`pt` is a plain function: ``!import patchtrace.debugger as d;
d.pt("patches")``.

Re-applied patches never outlive the prompt: they are restored when the interaction that
re-applied them ends, and an ``atexit`` hook restores anything left as a last resort.

Where things are: ``_commands`` (the ``pt`` table, each subcommand and the dispatch),
``_repatch`` (``pt repatch``/``pt unpatch`` and :func:`restore`), ``_hooks`` (into
pdb's class: :func:`install`, :func:`uninstall`), ``_entry`` (:func:`post_mortem`,
:func:`stop_at_leak`), ``_context`` (where a command runs and how records are shown)
and ``_state`` (what is remembered between prompts, in one object).
"""

from __future__ import annotations

from ._commands import pt
from ._entry import post_mortem, stop_at_leak
from ._hooks import install, installed, uninstall
from ._repatch import restore

__all__ = [
    "install",
    "installed",
    "post_mortem",
    "pt",
    "restore",
    "stop_at_leak",
    "uninstall",
]
