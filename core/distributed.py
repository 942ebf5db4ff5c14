"""Where this process stands in a multi-process training, and decisions all processes agree on.

A training that runs under ``torchrun`` (PyTorch's ``torch.distributed``) runs its callbacks in every process
("rank"). Two things then matter:

* callbacks that write files or print run on rank 0 only, or every rank writes the same file: a callback says so
  with the class attribute ``rank_zero_only = True``
  (see :attr:`~altametris.sara.core.base_callback.BaseCallback.rank_zero_only`), and the manager calls it on rank 0
  only;
* a stop decision taken on one rank (early stopping that sees its own shard's metrics, a NaN on one rank) must stop
  every rank at the same point, or the others wait forever at their next collective: :func:`any_rank` turns one
  rank's ``True`` into everyone's ``True``, and the reference loop :func:`~altametris.sara.core.loop.fit` asks it
  before acting on a stop request.

Rank detection never imports torch: :func:`rank_info` reads ``torch.distributed`` only when the trainer has already
imported torch and initialised a process group, else the ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` variables that
``torchrun`` sets, else it reports a single process.

Example:
    >>> info = rank_info(environ={"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    >>> info
    RankInfo(rank=1, world_size=2, local_rank=1, source='environment')
    >>> info.is_zero, info.distributed
    (False, True)
    >>> rank_info(environ={})
    RankInfo(rank=0, world_size=1, local_rank=0, source='single process')
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

from .exceptions import SaraError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .control import TrainingControl

__all__ = ["RankInfo", "agree_stop", "any_rank", "rank_info"]

_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
_REASON_BYTES = 1024  # a stop reason shared across ranks is cut to this many bytes of JSON


class RankInfo(NamedTuple):
    """This process's place in the training: its rank, how many ranks there are, and where that was read."""

    rank: int
    world_size: int
    local_rank: int
    source: str

    @property
    def is_zero(self) -> bool:
        """Whether this process is rank 0, the one that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part in the training."""
        return self.world_size > 1


def _process_group() -> Any:
    """``torch.distributed`` when torch is already imported and a process group is initialised, else ``None``."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def rank_info(environ: Mapping[str, str] | None = None) -> RankInfo:
    """Where this process stands: from ``torch.distributed``, else from ``torchrun``'s variables, else rank 0 of 1.

    Args:
        environ: the environment to read (``os.environ`` by default).

    Raises:
        SaraError: when ``RANK``, ``WORLD_SIZE`` or ``LOCAL_RANK`` is set but is not a sensible whole number.
    """
    dist = _process_group()
    if dist is not None:
        world_size = dist.get_world_size()
        rank = dist.get_rank()
        local = _read(environ if environ is not None else os.environ).get("LOCAL_RANK", rank)
        return RankInfo(rank, world_size, local, "torch.distributed")
    values = _read(environ if environ is not None else os.environ)
    if "RANK" not in values and "WORLD_SIZE" not in values:
        return RankInfo(0, 1, 0, "single process")
    rank = values.get("RANK", 0)
    world_size = values.get("WORLD_SIZE", 1)
    if rank >= world_size:
        raise SaraError(
            f"RANK={rank} is not below WORLD_SIZE={world_size}; these variables are set by the launcher "
            f"(torchrun): unset them, or launch the training through torchrun"
        )
    return RankInfo(rank, world_size, values.get("LOCAL_RANK", rank), "environment")


def _read(environ: Mapping[str, str]) -> dict[str, int]:
    values: dict[str, int] = {}
    for name in _VARIABLES:
        text = environ.get(name)
        if text is None or text == "":
            continue
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0 or (name == "WORLD_SIZE" and value == 0):
            kind = "positive" if name == "WORLD_SIZE" else "non-negative"
            raise SaraError(
                f"environment variable {name}={text[:40]!r} is not a {kind} whole number; it is set by the "
                f"launcher (torchrun): unset it, or fix the launch command"
            )
        values[name] = value
    return values


def any_rank(decision: bool) -> bool:
    """Whether ``decision`` is true on any rank: every rank gets the same answer.

    With a ``torch.distributed`` process group of more than one process, this is a collective (an all-reduce of one
    number): every rank must call it at the same point of the training, the way the reference loop does after every
    batch and every epoch. Without one, it returns ``decision``.
    """
    dist = _process_group()
    if dist is None or dist.get_world_size() < 2:
        return decision
    torch: Any = sys.modules["torch"]  # imported by the trainer: _process_group() found it
    flag = torch.tensor([1 if decision else 0], dtype=torch.int32)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def agree_stop(control: TrainingControl) -> bool:
    """Whether any rank asked for a stop; every rank gets the same answer and the asking rank's reason.

    Call it, on every rank, at each point where the loop checks for a stop (the reference loop does so after every
    batch and every epoch). With one process it is ``control.should_stop``. With several, it is one all-reduce;
    when some rank asked, a second collective shares the first asking rank's reason, which every other rank records
    in its own ``control`` as ``"rank N: <reason>"``.
    """
    dist = _process_group()
    if dist is None or dist.get_world_size() < 2:
        return control.should_stop
    if not any_rank(control.should_stop):
        return False
    import json

    torch: Any = sys.modules["torch"]
    mine = [control.stop_reason or "stop requested", control.stop_source] if control.should_stop else None
    # all_gather_object needs numpy; a fixed-size byte tensor of the JSON text needs nothing more than torch.
    encoded = json.dumps(mine).encode("utf-8")[:_REASON_BYTES]
    buffer = torch.zeros(_REASON_BYTES + 2, dtype=torch.uint8)
    buffer[:2] = torch.tensor([len(encoded) >> 8, len(encoded) & 0xFF], dtype=torch.uint8)
    if encoded:
        buffer[2 : 2 + len(encoded)] = torch.tensor(list(encoded), dtype=torch.uint8)
    gathered = [torch.zeros_like(buffer) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, buffer)
    if not control.should_stop:
        for rank, item in enumerate(gathered):
            values = item.tolist()
            text = bytes(values[2 : 2 + (values[0] << 8 | values[1])]).decode("utf-8", errors="replace")
            try:
                reason = json.loads(text)
            except ValueError:  # cut in the middle of a character or an escape: the reason was too long
                reason = [text, None]
            if reason is not None:
                control.request_stop(f"rank {rank}: {reason[0]}", source=reason[1])
                break
    return True
