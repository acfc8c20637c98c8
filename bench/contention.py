"""How much of the CPU other processes took while the bench ran: export/contention.py, shared with the export."""

from export.contention import CpuShare

__all__ = ["CpuShare"]
