"""After training: did the loss leave the range it can take on valid input?

The seed's lesson: NLLLoss and KLDivLoss on ReLU outputs have no lower bound, so the loss
runs off towards minus infinity while accuracy sits at the majority class.
"""
from __future__ import annotations

# Epochs over which a loss below its bound that still falls every epoch counts as unbounded.
WINDOW = 4
TOLERANCE = 1e-6


def diagnose(train_losses: list[float], val_losses: list[float], lower_bound: float | None,
             loss_name: str, confusion: list[list[int]]) -> dict:
    """Return {'status': ok | stalled | below_lower_bound | diverging, 'reason': str}."""
    notes = []
    lowest = min(train_losses + val_losses)
    status = "ok"
    if lower_bound is not None and lowest < lower_bound - TOLERANCE:  # None: a bound not known
        status = "below_lower_bound"
        notes.append(f"loss reached {lowest:.4g}, below {loss_name}'s lower bound {lower_bound:g} on valid input")
        tail = train_losses[-WINDOW:]
        steps = [b - a for a, b in zip(tail, tail[1:])]
        if len(tail) == WINDOW and all(s < 0 for s in steps):
            status = "diverging"
            notes.append(f"and it still fell in each of the last {WINDOW} epochs (no limit in sight)")
    elif len(train_losses) > 1 and len(set(train_losses)) == 1:
        # The other face of a ReLU last layer: every output stuck at 0, so no gradient at all.
        status = "stalled"
        notes.append(f"the training loss never moved from {train_losses[0]:.4g}: no gradient reached "
                     f"the weights (e.g. ReLU outputs stuck at 0)")
    predicted = [sum(row[c] for row in confusion) for c in range(len(confusion))]  # column sums
    if sum(1 for n in predicted if n) == 1:
        only = next(c for c, n in enumerate(predicted) if n)
        notes.append(f"every validation row is predicted as class {only}")
    return {"status": status, "reason": "; ".join(notes) or "loss stayed within its bounds"}


NON_FINITE = "non_finite"  # a replica whose loss turned NaN or infinite; it is named, not diagnosed


def distribution(statuses: list[str]) -> dict[str, int]:
    """How many replicas got each status, the most common first."""
    from collections import Counter

    return dict(distribution_order(Counter(statuses)))


def distribution_order(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def describe(counts: dict[str, int], non_finite: list = ()) -> str:
    """`diverging 20/25, stalled 5/25` (the most common first); replicas that turned non-finite
    (record.ReplicaResult) are named."""
    total = sum(counts.values())
    text = ", ".join(f"{status} {n}/{total}" for status, n in distribution_order(counts))
    if non_finite:
        text += " (non-finite: " + "; ".join(f"seed {r.seed} split {r.split} at epoch {r.non_finite_epoch}"
                                             for r in non_finite) + ")"
    return text
