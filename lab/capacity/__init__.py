"""Capacity planning: the lecture's model (lab.capacity.model), its queue as a fluid model
plus M/M/c (fluid, mmc), the table `lab capacity` prints, and the recipe it writes."""

from lab.capacity.model import BITS_PER_BYTE, Plan, Workload, plan

__all__ = ["BITS_PER_BYTE", "Plan", "Workload", "plan"]
