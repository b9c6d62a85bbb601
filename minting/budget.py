"""The priority fee settings the mint worker and the upgrades put on their transactions."""

from __future__ import annotations

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price

from chain.standards import Plan


def with_budget(plan: Plan, unit_limit: int | None, unit_price: int | None) -> Plan:
    """The plan with the ComputeBudget instructions first (the runtime reads them wherever
    they are, first is the convention), size-checked: still within 1,232 bytes with every
    required signature counted."""
    budget = []
    if unit_limit is not None:
        budget.append(set_compute_unit_limit(unit_limit))
    if unit_price is not None:
        budget.append(set_compute_unit_price(unit_price))
    return Plan((*budget, *plan.instructions), plan.fee_payer, plan.signers).check_size()
