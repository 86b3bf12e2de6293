"""Top-k of dense score rows with a deterministic tie rule (lower label id first), shared by every head."""

from __future__ import annotations

import torch

__all__ = ["topk_lower_id_ties"]


def topk_lower_id_ties(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of dense ``scores`` (B, C), best first, ties broken by the lower column id.

    ``torch.topk`` finds the k-th largest value per row; when no row has more than k entries at or above it
    (the usual case) only those k entries are sorted; otherwise the batch falls back to a full stable sort.
    """
    k = min(int(k), scores.shape[1])
    if k == 0 or scores.shape[0] == 0:
        empty = torch.zeros(scores.shape[0], k, dtype=torch.long, device=scores.device)
        return empty, scores.new_zeros(scores.shape[0], k)
    kth = torch.topk(scores, k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
    at_least = scores >= kth
    if bool((at_least.sum(dim=1) == k).all()):
        # exactly k candidates per row: nonzero() lists them by increasing id, so a stable sort keeps id order
        candidates = torch.nonzero(at_least, as_tuple=True)[1].view(-1, k)
        values = torch.gather(scores, 1, candidates)
        order = torch.sort(-values, dim=1, stable=True).indices
        return torch.gather(candidates, 1, order), torch.gather(values, 1, order)
    order = torch.sort(-scores, dim=1, stable=True).indices[:, :k]
    return order, torch.gather(scores, 1, order)
